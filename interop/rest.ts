/**
 * A small REST client for the real brain's `/api/v1`, authenticated by the admin's cookie session, with
 * the read endpoints and command endpoints the interop tests use. Field types cover what the tests
 * read; every body keeps the other fields the brain sent.
 */

/** One HTTP response: the status and the body parsed as JSON (the raw text when it is not JSON). */
export interface RestResponse<A> {
  readonly status: number
  readonly body: A
}

/** The cookie session a login returns. Node's fetch has no cookie jar, so both values are sent by hand. */
export interface Session {
  /** `z4j_session=<value>`, ready for a `Cookie` header. */
  readonly cookie: string
  /** The `z4j_csrf` cookie value, echoed in `X-CSRF-Token` on every unsafe method. */
  readonly csrf: string
}

/** An agent row from `GET /projects/{slug}/agents`. */
export interface AgentRow {
  readonly id: string
  readonly project_id: string
  readonly name: string
  /** `unknown` before the first hello, then `online` or `offline`. */
  readonly state: string
  readonly protocol_version: string
  readonly framework_adapter: string
  readonly engine_adapters: ReadonlyArray<string>
  readonly scheduler_adapters: ReadonlyArray<string>
  readonly capabilities: Readonly<Record<string, ReadonlyArray<string>>>
  readonly host_name: string | null
  readonly last_seen_at: string | null
  readonly last_connect_at: string | null
  readonly [field: string]: unknown
}

/** A task from `GET /projects/{slug}/tasks/{engine}/{task_id}`. */
export interface TaskRow {
  readonly engine: string
  readonly task_id: string
  readonly name: string
  readonly state: string
  readonly queue: string | null
  readonly args: unknown
  readonly kwargs: unknown
  readonly result: unknown
  readonly runtime_ms: number | null
  readonly worker_name: string | null
  readonly exception: string | null
  readonly [field: string]: unknown
}

/** A command from the commands endpoints. */
export interface CommandRow {
  readonly id: string
  readonly agent_id: string | null
  readonly action: string
  readonly target_type: string
  readonly target_id: string | null
  readonly payload: Readonly<Record<string, unknown>>
  /** `pending`, `dispatched`, `completed`, `failed` or `timeout`. */
  readonly status: string
  readonly result: Readonly<Record<string, unknown>> | null
  readonly error: string | null
  readonly [field: string]: unknown
}

/** A page of a list endpoint that paginates with a cursor. */
export interface Page<A> {
  readonly items: ReadonlyArray<A>
  readonly next_cursor: string | null
}

/** The command endpoints under `/projects/{slug}/commands/`. */
export type CommandPath =
  | "retry-task"
  | "cancel-task"
  | "requeue-dead-letter"
  | "bulk-retry"
  | "purge-queue"
  | "restart-worker"
  | "pool-resize"
  | "add-consumer"
  | "cancel-consumer"
  | "rate-limit"

type Row = Readonly<Record<string, unknown>>

const query = (parameters: Readonly<Record<string, string | number | undefined>>): string => {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(parameters)) {
    if (value !== undefined) search.set(key, String(value))
  }
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}

/** A REST client bound to one brain, one session and one project slug. */
export class RestClient {
  constructor(
    readonly baseUrl: string,
    readonly slug: string,
    private readonly session: Session
  ) {}

  /** Sends one request; `path` starts after the host, e.g. `/api/v1/projects`. */
  async request<A = unknown>(method: string, path: string, body?: unknown): Promise<RestResponse<A>> {
    const unsafe = method !== "GET" && method !== "HEAD"
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        cookie: this.session.cookie,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(unsafe ? { "x-csrf-token": this.session.csrf } : {})
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text === "" ? null : JSON.parse(text)
    } catch {
      // Not JSON: the text is kept so a failing test shows what the brain sent.
    }
    return { status: response.status, body: parsed as A }
  }

  get<A = unknown>(path: string) {
    return this.request<A>("GET", path)
  }

  post<A = unknown>(path: string, body: unknown) {
    return this.request<A>("POST", path, body)
  }

  delete<A = unknown>(path: string) {
    return this.request<A>("DELETE", path)
  }

  private project(path: string): string {
    return `/api/v1/projects/${encodeURIComponent(this.slug)}${path}`
  }

  /** Lists the project's agents. */
  agents() {
    return this.get<ReadonlyArray<AgentRow>>(this.project("/agents"))
  }

  /** Finds one agent in the project's list; the body is undefined when it is not listed. */
  async agent(agentId: string): Promise<RestResponse<AgentRow | undefined>> {
    const response = await this.agents()
    const rows = Array.isArray(response.body) ? response.body : []
    return { status: response.status, body: rows.find((row) => row.id === agentId) }
  }

  /** Lists worker processes seen through agents' hellos; `state` is `online` or `offline`. */
  agentWorkers(filter: { readonly state?: "online" | "offline"; readonly role?: string } = {}) {
    return this.get<ReadonlyArray<Row>>(this.project(`/agent-workers${query(filter)}`))
  }

  /** Reads one task; 404 until an event for it is stored. Task ids containing `/` cannot be addressed. */
  task(engine: string, taskId: string) {
    return this.get<TaskRow>(this.project(`/tasks/${encodeURIComponent(engine)}/${encodeURIComponent(taskId)}`))
  }

  /** Lists the stored events of one task. */
  events(engine: string, taskId: string) {
    return this.get<Page<Row>>(this.project(`/events${query({ engine, task_id: taskId })}`))
  }

  /** Lists the queues the brain has seen. */
  queues() {
    return this.get<ReadonlyArray<Row>>(this.project("/queues"))
  }

  /** Lists the workers the brain has seen in events (`data.worker`). */
  workers() {
    return this.get<ReadonlyArray<Row>>(this.project("/workers"))
  }

  /** Lists the project's schedules. */
  schedules() {
    return this.get<Page<Row>>(this.project("/schedules"))
  }

  /** Lists the project's commands, optionally only those in one status. */
  commands(filter: { readonly status?: string } = {}) {
    return this.get<Page<CommandRow>>(this.project(`/commands${query(filter)}`))
  }

  /** Reads one command. */
  command(commandId: string) {
    return this.get<CommandRow>(this.project(`/commands/${encodeURIComponent(commandId)}`))
  }

  /** Issues a command: 202 when it was dispatched or queued, 422 when the brain rejects the target. */
  issueCommand(path: CommandPath, body: Readonly<Record<string, unknown>>) {
    return this.post<CommandRow>(this.project(`/commands/${path}`), body)
  }

  /** Revokes an agent: the brain closes its live sockets and rejects its token from then on. */
  revokeAgent(agentId: string) {
    return this.delete(this.project(`/agents/${encodeURIComponent(agentId)}`))
  }
}

/**
 * Logs in with email and password and returns the session. Throws with the brain's response when the
 * login fails or sets no session or CSRF cookie.
 */
export const login = async (baseUrl: string, email: string, password: string): Promise<Session> => {
  const response = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password })
  })
  if (response.status !== 200) {
    throw new Error(
      `login to the brain at ${baseUrl} failed with HTTP ${response.status}: ${await response.text()}; a 401 right after a first boot means the bootstrap admin was not created (see the brain's log)`
    )
  }
  const pairs = response.headers.getSetCookie().map((cookie) => cookie.split(";")[0] ?? "")
  const pair = (name: string) => pairs.find((entry) => entry.startsWith(`${name}=`)) ?? ""
  const cookie = pair("z4j_session")
  const csrf = pair("z4j_csrf").slice("z4j_csrf=".length)
  if (cookie === "" || csrf === "") {
    throw new Error(
      `the brain's login response set no z4j_session or z4j_csrf cookie; production mode names them __Host-*, so start the brain with --environment dev`
    )
  }
  return { cookie, csrf }
}

/** Credentials of one agent, as the brain returned them when it was created. */
export interface MintedAgent {
  readonly agentId: string
  readonly projectId: string
  readonly name: string
  /** The bearer token for `Authorization: Bearer`. */
  readonly token: string
  /** The base64url project secret that signs frames. */
  readonly hmacSecret: string
}

/** Creates an agent in the client's project. Agent names are unique per project. */
export const mintAgent = async (rest: RestClient, name: string): Promise<MintedAgent> => {
  const response = await rest.post<{
    readonly agent: { readonly id: string; readonly project_id: string }
    readonly token: string
    readonly hmac_secret: string
  }>(`/api/v1/projects/${encodeURIComponent(rest.slug)}/agents`, { name })
  if (response.status !== 201) {
    // The body has no secret when the request failed.
    throw new Error(`creating agent ${name} failed with HTTP ${response.status}: ${JSON.stringify(response.body)}`)
  }
  return {
    agentId: response.body.agent.id,
    projectId: response.body.agent.project_id,
    name,
    token: response.body.token,
    hmacSecret: response.body.hmac_secret
  }
}
