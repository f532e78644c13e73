import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** A key and certificate in PEM, plus the certificate's file path (for NODE_EXTRA_CA_CERTS). */
export interface KeyPair {
  readonly key: string
  readonly cert: string
  readonly certPath: string
}

export interface Certificates {
  readonly folder: string
  /** A CA that is trusted only where its file is given to NODE_EXTRA_CA_CERTS. */
  readonly ca: KeyPair
  /** Signed by `ca` for localhost and 127.0.0.1, valid for a year. */
  readonly valid: KeyPair
  /** Signed by `ca` for localhost and 127.0.0.1, valid for 3 days. */
  readonly expiringSoon: KeyPair
  /** Signed by `ca` for localhost and 127.0.0.1, valid in January 2020 only. */
  readonly expired: KeyPair
  /** Signed by `ca` for brain.example only. */
  readonly otherHost: KeyPair
  /** Self-signed for localhost and 127.0.0.1, valid for 3 days. */
  readonly selfSigned: KeyPair
  /** Self-signed for localhost and 127.0.0.1, valid in January 2020 only. */
  readonly selfSignedExpired: KeyPair
  readonly remove: () => void
}

export const hasOpenssl = (): boolean => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

// `openssl ca` is the one OpenSSL 3.0 command that sets arbitrary validity dates, which an expired
// certificate needs.
const caConfig = `[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
`

const localhostNames = "subjectAltName=DNS:localhost,IP:127.0.0.1"

/** Generates every certificate the TLS tests need into a new temporary folder, with `openssl`. */
export const generateCertificates = (): Certificates => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "z4j-certs-"))
  const run = (...args: Array<string>) => execFileSync("openssl", args, { cwd: folder, stdio: "pipe" })
  const file = (name: string) => path.join(folder, name)
  fs.writeFileSync(file("ca.cnf"), caConfig)
  fs.writeFileSync(file("index.txt"), "")
  fs.writeFileSync(file("serial"), "01\n")

  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
  run("req", "-x509", ...ecKey, "-keyout", "ca.key", "-out", "ca.pem", "-days", "400", "-subj", "/CN=z4j test CA")

  const request = (name: string, commonName: string, names: string) =>
    run(
      "req",
      ...ecKey,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      names
    )
  const sign = (name: string, dates: ReadonlyArray<string>, selfSigned: boolean) =>
    run(
      "ca",
      "-batch",
      "-notext",
      "-config",
      "ca.cnf",
      ...(selfSigned ? ["-selfsign", "-keyfile", `${name}.key`] : ["-cert", "ca.pem", "-keyfile", "ca.key"]),
      "-in",
      `${name}.csr`,
      "-out",
      `${name}.pem`,
      ...dates
    )
  const pair = (name: string): KeyPair => ({
    key: fs.readFileSync(file(`${name}.key`), "utf8"),
    cert: fs.readFileSync(file(`${name}.pem`), "utf8"),
    certPath: file(`${name}.pem`)
  })
  const current = ["-days", "3"]
  const january2020 = ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]

  request("valid", "localhost", localhostNames)
  sign("valid", ["-days", "365"], false)
  request("expiring-soon", "localhost", localhostNames)
  sign("expiring-soon", current, false)
  request("expired", "localhost", localhostNames)
  sign("expired", january2020, false)
  request("other-host", "brain.example", "subjectAltName=DNS:brain.example")
  sign("other-host", current, false)
  request("self-signed", "localhost", localhostNames)
  sign("self-signed", current, true)
  request("self-signed-expired", "localhost", localhostNames)
  sign("self-signed-expired", january2020, true)

  return {
    folder,
    ca: pair("ca"),
    valid: pair("valid"),
    expiringSoon: pair("expiring-soon"),
    expired: pair("expired"),
    otherHost: pair("other-host"),
    selfSigned: pair("self-signed"),
    selfSignedExpired: pair("self-signed-expired"),
    remove: () => fs.rmSync(folder, { recursive: true, force: true })
  }
}
