import * as net from "node:net"
import * as tls from "node:tls"
import * as Effect from "effect/Effect"
import type { LookupFunction, ProbeResult } from "../Diagnostics.js"
import { errorCode, errorMessage, fail, notApplicable, pass } from "./diagnosticsResult.js"

/** The location of the brain's agent endpoint, taken apart for the network probes. */
export interface Target {
  /** The `ws://` or `wss://` URL of the agent endpoint. */
  readonly url: string
  readonly secure: boolean
  /** The host name or IP address, without the brackets of an IPv6 literal. */
  readonly host: string
  readonly port: number
}

export const targetOf = (wsUrl: string): Target => {
  const url = new URL(wsUrl)
  const secure = url.protocol === "wss:"
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1")
  const defaultPort = secure ? 443 : 80
  const port = url.port === "" ? defaultPort : Number(url.port)
  return { url: wsUrl, secure, host, port }
}

const endpoint = (target: Target) =>
  net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`

export const probeDns = (target: Target, lookup: LookupFunction, timeoutMillis: number): Effect.Effect<ProbeResult> => {
  if (net.isIP(target.host) !== 0) {
    return Effect.succeed(
      pass("dns", `${target.host} is an IP address, so no lookup is needed`, {
        host: target.host,
        addresses: [target.host]
      })
    )
  }
  return Effect.tryPromise(() => lookup(target.host)).pipe(
    Effect.timeoutFail({ duration: timeoutMillis, onTimeout: () => "timeout" as const }),
    Effect.match({
      onSuccess: (addresses) =>
        addresses.length === 0
          ? fail(
              "dns",
              `${target.host} resolves to no address. Check the host name in Z4J_BRAIN_URL and its DNS records`,
              {
                host: target.host,
                addresses: []
              }
            )
          : pass("dns", `${target.host} resolves to ${addresses.map((entry) => entry.address).join(", ")}`, {
              host: target.host,
              addresses: addresses.map((entry) => entry.address)
            }),
      onFailure: (error) => {
        if (error === "timeout") {
          return fail(
            "dns",
            `looking up ${target.host} timed out after ${timeoutMillis} ms. Check this machine's DNS servers (/etc/resolv.conf)`,
            { host: target.host, code: "timeout" }
          )
        }
        const code = errorCode(error.error) ?? "unknown"
        const problem =
          code === "ENOTFOUND"
            ? `${target.host} was not found in DNS`
            : `looking up ${target.host} failed (${code}: ${errorMessage(error.error)})`
        return fail("dns", `${problem}. Check the host name in Z4J_BRAIN_URL and this machine's DNS settings`, {
          host: target.host,
          code
        })
      }
    })
  )
}

const tcpRemedies: Record<string, string> = {
  ECONNREFUSED: "nothing accepts connections there. Check that the brain is running and the port in Z4J_BRAIN_URL",
  ECONNRESET: "the connection was reset. A firewall may be blocking the port",
  EHOSTUNREACH: "the host is unreachable. Check the network route and firewall between this machine and the brain",
  ENETUNREACH: "the network is unreachable. Check this machine's network configuration",
  ENOTFOUND: "the host name was not found. Check the host name in Z4J_BRAIN_URL"
}

export const probeTcp = (target: Target, timeoutMillis: number): Effect.Effect<ProbeResult> =>
  Effect.async<ProbeResult>((resume) => {
    const startedAt = Date.now()
    const socket = net.connect({ host: target.host, port: target.port })
    const timer = setTimeout(() => {
      socket.destroy()
      resume(
        Effect.succeed(
          fail(
            "tcp",
            `connecting to ${endpoint(target)} timed out after ${timeoutMillis} ms. A firewall may be dropping the packets, or the host or port in Z4J_BRAIN_URL is wrong`,
            { host: target.host, port: target.port, code: "timeout" }
          )
        )
      )
    }, timeoutMillis)
    socket.once("connect", () => {
      clearTimeout(timer)
      const details = {
        host: target.host,
        port: target.port,
        remoteAddress: socket.remoteAddress ?? null,
        connectMillis: Date.now() - startedAt
      }
      socket.destroy()
      resume(Effect.succeed(pass("tcp", `connected to ${endpoint(target)}`, details)))
    })
    socket.once("error", (error) => {
      clearTimeout(timer)
      const code = errorCode(error) ?? "unknown"
      const remedy = tcpRemedies[code] ?? `${error.message}. Check the network path to the brain`
      resume(
        Effect.succeed(
          fail("tcp", `cannot connect to ${endpoint(target)} (${code}): ${remedy}`, {
            host: target.host,
            port: target.port,
            code
          })
        )
      )
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

const millisPerDay = 24 * 60 * 60 * 1000

const describeName = (name: tls.PeerCertificate["subject"] | undefined): string => {
  if (name === undefined || name === null) return ""
  return Object.entries(name)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
    .join(", ")
}

const selfSignedCodes = new Set(["DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN"])
const untrustedIssuerCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
])

/** One line naming why the certificate fails verification and what to do about it. */
const explainVerification = (
  target: Target,
  code: string,
  certificate: { readonly subject: string; readonly issuer: string; readonly altNames: string },
  validTo: Date,
  validFrom: Date,
  now: Date
): string => {
  const selfSigned = selfSignedCodes.has(code) ? " and self-signed" : ""
  if (code === "CERT_HAS_EXPIRED" || validTo.getTime() < now.getTime()) {
    const daysAgo = Math.floor((now.getTime() - validTo.getTime()) / millisPerDay)
    return `the brain's certificate (${certificate.subject}) expired on ${validTo.toISOString()}, ${daysAgo} days ago${selfSigned}. Renew the certificate on the brain or its proxy`
  }
  if (code === "CERT_NOT_YET_VALID" || validFrom.getTime() > now.getTime()) {
    return `the brain's certificate is not valid before ${validFrom.toISOString()}. Check this machine's clock (keep NTP running) or the certificate's start date`
  }
  if (selfSignedCodes.has(code)) {
    return `the brain's certificate is self-signed (${code}, subject ${certificate.subject}). Use a certificate from a trusted CA, or add the certificate or its CA to NODE_EXTRA_CA_CERTS`
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const covered = certificate.altNames === "" ? certificate.subject : certificate.altNames
    return `the brain's certificate does not cover ${target.host} (it covers ${covered}). Use a host name the certificate covers in Z4J_BRAIN_URL, or reissue the certificate`
  }
  if (untrustedIssuerCodes.has(code)) {
    return `the brain's certificate was issued by ${certificate.issuer}, which this machine does not trust (${code}). Set NODE_EXTRA_CA_CERTS to the CA's PEM file, or make the server send its intermediate certificates`
  }
  return `the brain's certificate failed verification (${code}). Check the certificate chain the brain or its proxy sends`
}

/**
 * Checks the TLS handshake and the certificate. The probe connects without rejecting the certificate
 * so that it can describe a bad one, and judges it from Node's verification result instead. This is
 * safe because the probe sends no data over the connection.
 */
export const probeTls = (
  target: Target,
  options: { readonly timeoutMillis: number; readonly rejectUnauthorized: boolean; readonly warnDays: number }
): Effect.Effect<ProbeResult> => {
  if (!target.secure) {
    return Effect.succeed(notApplicable("tls", "not applicable: ws:// connections are not encrypted"))
  }
  return Effect.async<ProbeResult>((resume) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}),
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"]
    })
    const timer = setTimeout(() => {
      socket.destroy()
      resume(
        Effect.succeed(
          fail(
            "tls",
            `the TLS handshake with ${endpoint(target)} timed out after ${options.timeoutMillis} ms. Check that the port serves TLS`,
            { host: target.host, port: target.port, code: "timeout" }
          )
        )
      )
    }, options.timeoutMillis)
    socket.once("secureConnect", () => {
      clearTimeout(timer)
      const peer = socket.getPeerCertificate()
      const now = new Date()
      const validFrom = new Date(peer.valid_from)
      const validTo = new Date(peer.valid_to)
      const daysLeft = Math.floor((validTo.getTime() - now.getTime()) / millisPerDay)
      const certificate = {
        subject: describeName(peer.subject),
        issuer: describeName(peer.issuer),
        altNames: peer.subjectaltname ?? ""
      }
      const verificationError = socket.authorizationError === null ? null : String(socket.authorizationError)
      const details = {
        host: target.host,
        port: target.port,
        protocol: socket.getProtocol(),
        authorized: socket.authorized,
        verificationError,
        subject: certificate.subject,
        issuer: certificate.issuer,
        subjectAltName: certificate.altNames,
        validFrom: validFrom.toISOString(),
        validTo: validTo.toISOString(),
        daysLeft,
        fingerprint256: peer.fingerprint256,
        rejectUnauthorized: options.rejectUnauthorized
      }
      socket.destroy()

      if (verificationError !== null) {
        const explanation = explainVerification(target, verificationError, certificate, validTo, validFrom, now)
        if (!options.rejectUnauthorized) {
          resume(
            Effect.succeed(
              pass(
                "tls",
                `certificate verification is turned off, and the certificate would fail it: ${explanation}`,
                details
              )
            )
          )
          return
        }
        resume(Effect.succeed(fail("tls", explanation, details)))
        return
      }
      const expiry =
        daysLeft < options.warnDays
          ? `, but it expires in ${daysLeft} days (${validTo.toISOString()}); renew it soon`
          : `, valid until ${validTo.toISOString()} (${daysLeft} days)`
      resume(
        Effect.succeed(
          pass(
            "tls",
            `${details.protocol ?? "TLS"} with a trusted certificate for ${certificate.subject}${expiry}`,
            details
          )
        )
      )
    })
    socket.once("error", (error) => {
      clearTimeout(timer)
      const code = errorCode(error) ?? "unknown"
      const remedy =
        code === "EPROTO" || /wrong version number|packet length too long/i.test(error.message)
          ? "The port does not seem to serve TLS: if it serves plain HTTP, use http:// or ws:// in Z4J_BRAIN_URL"
          : "Check that the port serves TLS and that the brain or its proxy is healthy"
      resume(
        Effect.succeed(
          fail("tls", `the TLS handshake with ${endpoint(target)} failed (${code}: ${error.message}). ${remedy}`, {
            host: target.host,
            port: target.port,
            code
          })
        )
      )
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })
}
