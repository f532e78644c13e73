/**
 * The commands of the `z4j-agent` executable, declared once for the parser and the help text.
 *
 * @since 0.1.0
 */
import type { CommandSpec, FlagSpec } from "./Args.js"

const secretOnCommandLine = "Prefer the environment variable: other users of this machine can read command lines"

const connectionFlags: ReadonlyArray<FlagSpec> = [
  {
    name: "brain-url",
    kind: "string",
    placeholder: "URL",
    env: "Z4J_BRAIN_URL",
    description:
      "Address of the brain, http(s):// or ws(s)://; /ws/agent is appended when missing. Plain ws:// is accepted for localhost, 127.0.0.1 and ::1 only"
  },
  {
    name: "token",
    kind: "string",
    placeholder: "TOKEN",
    env: "Z4J_TOKEN",
    secret: true,
    description: `The agent's bearer token, shown once when the agent was created. ${secretOnCommandLine}`
  },
  {
    name: "project-id",
    kind: "string",
    placeholder: "ID",
    env: "Z4J_PROJECT_ID",
    description: "The project the agent belongs to; logged only, because the token decides the project"
  },
  {
    name: "hmac-secret",
    kind: "string",
    placeholder: "SECRET",
    env: "Z4J_HMAC_SECRET",
    secret: true,
    description: `The project's hmac_secret (44 base64url characters), shown once when the agent was created. ${secretOnCommandLine}`
  },
  {
    name: "home",
    kind: "string",
    placeholder: "DIR",
    env: "Z4J_HOME",
    defaultValue: "~/.z4j",
    description: "Folder of the durable event buffer; when it is not writable the agent uses $TMPDIR/z4j-<uid>"
  }
]

const jsonFlag = (what: string): FlagSpec => ({ name: "json", kind: "boolean", description: what })

/**
 * @since 0.1.0
 * @category commands
 */
export const doctor: CommandSpec = {
  name: "doctor",
  summary: "Check the settings, the buffer folder and every step of the connection to the brain",
  description: [
    "Runs these probes in order and prints one pass/fail line for each, with the fix when it fails: config (required settings and every Z4J_* tunable), buffer (creates, writes, fsyncs and deletes a file in the buffer folder), dns, tcp, tls (wss:// only: handshake, certificate verification, expiry), websocket (the upgrade with the token) and handshake (hello, hello_ack, one signed heartbeat, then a normal close).",
    "A probe whose prerequisite failed is reported as skipped. The handshake probe opens a real session: while it lasts (about 2 s) the brain lists it as a worker of the agent, and commands pending for the agent are delivered to it and not run.",
    "Exit status: 0 when every probe passes, 1 when one fails, 2 when the command line is invalid."
  ],
  flags: [
    ...connectionFlags,
    {
      name: "no-websocket",
      kind: "boolean",
      description: "Skip the websocket and handshake probes, which open connections the brain records"
    },
    {
      name: "timeout-ms",
      kind: "string",
      placeholder: "MILLIS",
      defaultValue: "5000",
      description:
        "Time limit of each network step (lookup, connect, TLS handshake, upgrade, hello_ack), in milliseconds"
    },
    jsonFlag(
      'Print one JSON document, {"ok": boolean, "probes": [{"name", "ok", "message", "details"}]}; an invalid configuration adds "stage": "config" and "error"'
    )
  ],
  positionals: [],
  examples: [
    "Z4J_BRAIN_URL=https://z4j.example.com Z4J_TOKEN=... Z4J_PROJECT_ID=shop Z4J_HMAC_SECRET=... z4j-agent doctor",
    "z4j-agent doctor --no-websocket --json"
  ]
}

/**
 * @since 0.1.0
 * @category commands
 */
export const run: CommandSpec = {
  name: "run",
  summary: "Run the agent as its own process, for a BullMQ deployment or a worker module",
  description: [
    "Starts an agent from the Z4J_* environment and the flags below, and keeps it connected until SIGTERM or SIGINT. On either signal it stops taking events, flushes the buffer, waits up to Z4J_DRAIN_TIMEOUT_MILLIS (default 5000 ms) for the brain's acknowledgements, closes the connection normally and exits with status 0. SIGHUP skips the current reconnect wait.",
    "With --engine bullmq the agent watches the BullMQ queues in the Redis at --redis and reports their jobs (a sidecar next to your workers). Without --queues it finds the queues by their meta keys, and scans again every --discover-interval seconds, so queues created after the start are watched too.",
    "With a MODULE the agent imports it (a path, resolved from the current folder, or a package name). The module's default export, or its export named z4j, may be a function that receives a WorkerContext { agent, sink, attachEngine, signal } once the agent is built; a function it returns is called at shutdown, before the agent disconnects. It may instead be an Effect Layer that requires the Agent service; it is built on top of the agent and released before it. A module with neither export is imported for its side effects only."
  ],
  flags: [
    ...connectionFlags,
    {
      name: "engine",
      kind: "string",
      placeholder: "NAME",
      description: "An engine to watch from outside the workers; the one available is bullmq"
    },
    {
      name: "redis",
      kind: "string",
      placeholder: "URL",
      env: "Z4J_REDIS_URL",
      description: "Redis URL of the BullMQ queues, such as redis://127.0.0.1:6379/0; needed with --engine bullmq"
    },
    {
      name: "queues",
      kind: "string",
      placeholder: "NAMES",
      description: "Comma-separated BullMQ queue names to watch. Default: every queue found in Redis by its meta key"
    },
    {
      name: "prefix",
      kind: "string",
      placeholder: "PREFIX",
      defaultValue: "bull",
      description: "Key prefix of the BullMQ queues"
    },
    {
      name: "discover-interval",
      kind: "string",
      placeholder: "SECONDS",
      env: "Z4J_DISCOVER_INTERVAL_SECONDS",
      defaultValue: "30",
      description:
        "Seconds between two scans of Redis for new BullMQ queues, without --queues. The agent waits for the first queue when Redis has none yet, and watches each queue created later. 0 scans once, at start, and exits with status 1 when no queue is found"
    }
  ],
  positionals: [{ name: "MODULE", description: "A worker module to load and attach the agent to (optional)" }],
  examples: ["z4j-agent run --engine bullmq --redis redis://127.0.0.1:6379", "z4j-agent run ./dist/worker.js"]
}

/**
 * @since 0.1.0
 * @category commands
 */
export const version: CommandSpec = {
  name: "version",
  summary: "Print the agent, protocol and runtime versions",
  description: [
    "Prints the z4j-agent package version, the wire protocol version it speaks, and the Node.js version and platform."
  ],
  flags: [jsonFlag('Print one JSON document: {"agent", "protocol", "node", "platform", "arch"}')],
  positionals: [],
  examples: ["z4j-agent version --json"]
}

/**
 * @since 0.1.0
 * @category commands
 */
export const help: CommandSpec = {
  name: "help",
  summary: "Show the help of a command",
  description: ["Shows the list of commands, or the help of COMMAND."],
  flags: [],
  positionals: [{ name: "COMMAND", description: "The command to describe (optional)" }],
  examples: ["z4j-agent help doctor"]
}

/**
 * Every command, in the order help lists them.
 *
 * @since 0.1.0
 * @category commands
 */
export const all: ReadonlyArray<CommandSpec> = [doctor, run, version, help]

/**
 * Environment variables read by every command, listed in the general help.
 *
 * @since 0.1.0
 * @category commands
 */
export const loggingVariables: ReadonlyArray<readonly [string, string]> = [
  ["Z4J_LOG_LEVEL", "trace, debug, info, warning, error, fatal or none. Default info"],
  ["Z4J_LOG_FORMAT", "pretty, logfmt or json. Default pretty on a terminal, logfmt otherwise. Logs go to stderr"]
]
