import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

/** Name of one buffer file: the owner's pid, its start time and a random tag for several buffers per process. */
const fileNamePattern = /^buffer-(\d+)-(\d+)-([0-9a-f]+)\.sqlite$/

/** A buffer file of the folder, parsed from its name. */
export interface BufferFile {
  readonly path: string
  readonly pid: number
  readonly startMillis: number
}

/** Describes why a path cannot hold a buffer, in the words of the failing system call. */
export const describeFailure = (error: unknown): string => {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === undefined || error.message.startsWith(code) ? error.message : `${code}: ${error.message}`
  }
  return String(error)
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT"

/**
 * Creates `folder` with mode 0700 if it is missing, or narrows it to 0700 if it exists with group or
 * other bits. Only for folders this module owns, never for the user's home.
 */
const ensurePrivateFolder = (folder: string): void => {
  let stats: fs.Stats
  try {
    stats = fs.lstatSync(folder)
  } catch (error) {
    if (!isMissing(error)) throw error
    fs.mkdirSync(folder, { mode: 0o700 })
    // mkdir applies the umask, which may have cleared owner bits.
    fs.chmodSync(folder, 0o700)
    return
  }
  if (!stats.isDirectory()) {
    throw new Error(`${folder} exists and is not a folder (a symbolic link or a file)`)
  }
  const uid = process.getuid?.()
  if (uid !== undefined && stats.uid !== uid) {
    throw new Error(`${folder} belongs to uid ${stats.uid}, not to this process (uid ${uid})`)
  }
  if ((stats.mode & 0o777) !== 0o700) fs.chmodSync(folder, 0o700)
}

/**
 * Returns `<home>/buffers/<agentKey>`, creating what is missing. A home that exists is used as it is; a
 * home this call creates gets mode 0700, as do the two folders below it.
 */
export const prepareFolder = (home: string, agentKey: string, options: { readonly privateHome: boolean }): string => {
  if (options.privateHome) {
    fs.mkdirSync(path.dirname(home), { recursive: true })
    ensurePrivateFolder(home)
  } else if (!fs.existsSync(home)) {
    fs.mkdirSync(home, { recursive: true, mode: 0o700 })
    fs.chmodSync(home, 0o700)
  }
  const buffers = path.join(home, "buffers")
  ensurePrivateFolder(buffers)
  const folder = path.join(buffers, agentKey)
  ensurePrivateFolder(folder)
  return folder
}

/** Creates a new, empty buffer file with mode 0600; fails rather than reuse an existing file. */
export const createBufferFile = (folder: string, startMillis: number): string => {
  const file = path.join(folder, `buffer-${process.pid}-${startMillis}-${randomBytes(4).toString("hex")}.sqlite`)
  const fd = fs.openSync(file, "wx", 0o600)
  try {
    fs.fchmodSync(fd, 0o600)
  } finally {
    fs.closeSync(fd)
  }
  return file
}

/** Buffer files of `folder` other than `own`, oldest owner first. */
export const listBufferFiles = (folder: string, own: string): Array<BufferFile> => {
  const files: Array<BufferFile> = []
  for (const name of fs.readdirSync(folder)) {
    const match = fileNamePattern.exec(name)
    const file = path.join(folder, name)
    if (match === null || file === own) continue
    files.push({ path: file, pid: Number(match[1]), startMillis: Number(match[2]) })
  }
  return files.sort((left, right) => left.startMillis - right.startMillis || left.path.localeCompare(right.path))
}

/** Checks whether a process with this pid exists. A pid reused by another program also counts as alive. */
export const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Deletes a buffer file with its WAL, shared-memory and rollback-journal companions; missing ones are ignored. */
export const removeBufferFile = (file: string): void => {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) fs.rmSync(`${file}${suffix}`, { force: true })
}

/** Size of a file in bytes, or undefined when it no longer exists. */
export const fileSize = (file: string): number | undefined => {
  try {
    return fs.statSync(file).size
  } catch (error) {
    if (isMissing(error)) return undefined
    throw error
  }
}
