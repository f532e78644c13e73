import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as Z4j from "../../src/layers/Z4j.js"
import { Agent } from "../../src/services/Agent.js"
import { type CloseInfo, ConnectFailed, Connection, type Socket } from "../../src/services/Connection.js"

const options: Z4j.Options = {
  brainUrl: "ws://127.0.0.1:1",
  token: "test-token",
  hmacSecret: "7c2WoyNdON3oZougtKSgxvuDbp1s3ohIyQOaXEUP1ZM=",
  projectId: "11223344-5566-7788-99aa-bbccddeeff00",
  buffer: "memory",
  // The dispatcher's timer wakes every flush interval. At the default 100 ms, each 39 s step of the test
  // clock would run it hundreds of times, so the supervisor would not get the yields `settle` gives.
  flushIntervalMillis: 60_000
}

/** A transport whose every attempt ends the way `outcome` says, counting the attempts. */
const scriptedConnection = (outcome: "refused" | { readonly closeCode: number }) => {
  let attempts = 0
  const layer = Layer.succeed(Connection, {
    connect: () =>
      Effect.gen(function* () {
        attempts += 1
        if (outcome === "refused") {
          return yield* new ConnectFailed({ url: options.brainUrl!, reason: "refused", detail: "ECONNREFUSED" })
        }
        const closed = yield* Deferred.make<CloseInfo>()
        yield* Deferred.succeed(closed, { code: outcome.closeCode, reason: "", initiatedLocally: false })
        const socket: Socket = {
          send: () => Effect.void,
          messages: yield* Queue.unbounded<string>(),
          closed,
          close: () => Deferred.await(closed)
        }
        return socket
      })
  })
  return { layer, attempts: () => attempts }
}

/** Lets forked fibers run up to their next sleep without moving the test clock. */
const settle = Effect.repeatN(Effect.yieldNow(), 200)

describe("Supervisor backoff", () => {
  it.scoped("network failures back off from 1 s, doubling, with at most 30 % jitter", () => {
    const connection = scriptedConnection("refused")
    return Effect.gen(function* () {
      yield* Agent
      yield* settle
      expect(connection.attempts()).toBe(1)
      yield* TestClock.adjust(999)
      yield* settle
      expect(connection.attempts()).toBe(1)
      yield* TestClock.adjust(301)
      yield* settle
      expect(connection.attempts()).toBe(2)
      // The second wait is 2 s to 2.6 s after the second attempt, which came at 1 s to 1.3 s.
      yield* TestClock.adjust(1699)
      yield* settle
      expect(connection.attempts()).toBe(2)
      yield* TestClock.adjust(901)
      yield* settle
      expect(connection.attempts()).toBe(3)
      // Many failures later the wait stays under the 30 s cap plus jitter.
      for (let step = 0; step < 10; step++) {
        yield* TestClock.adjust(39_000)
        yield* settle
      }
      // A 39 s window can hold two attempts 30 s apart, so the check starts at an attempt: the clock
      // moves a second at a time until one happens, which puts it less than 1 s past that attempt.
      const before = connection.attempts()
      for (let second = 0; second < 40 && connection.attempts() === before; second++) {
        yield* TestClock.adjust(1_000)
        yield* settle
      }
      const atAttempt = connection.attempts()
      expect(atAttempt).toBe(before + 1)
      yield* TestClock.adjust(29_000)
      yield* settle
      expect(connection.attempts()).toBe(atAttempt)
      yield* TestClock.adjust(10_000)
      yield* settle
      expect(connection.attempts()).toBe(atAttempt + 1)
    }).pipe(Effect.provide(Z4j.layerWith(options, connection.layer)))
  })

  it.scoped("a 4401 close backs off from 10 s", () => {
    const connection = scriptedConnection({ closeCode: 4401 })
    return Effect.gen(function* () {
      const agent = yield* Agent
      yield* settle
      expect(connection.attempts()).toBe(1)
      const status = yield* agent.status
      expect(status.connection.failureStreaks.auth).toBe(1)
      yield* TestClock.adjust(9_999)
      yield* settle
      expect(connection.attempts()).toBe(1)
      yield* TestClock.adjust(3_001)
      yield* settle
      expect(connection.attempts()).toBe(2)
    }).pipe(Effect.provide(Z4j.layerWith(options, connection.layer)))
  })

  it.scoped("a 4400 close backs off in the protocol class", () => {
    const connection = scriptedConnection({ closeCode: 4400 })
    return Effect.gen(function* () {
      const agent = yield* Agent
      yield* settle
      const status = yield* agent.status
      expect(status.connection.failureStreaks.protocol).toBe(1)
      expect(status.connection.failureStreaks.auth).toBe(0)
      yield* TestClock.adjust(1_300)
      yield* settle
      expect(connection.attempts()).toBe(2)
    }).pipe(Effect.provide(Z4j.layerWith(options, connection.layer)))
  })

  it.scoped("reconnectNow skips the wait", () => {
    const connection = scriptedConnection({ closeCode: 4401 })
    return Effect.gen(function* () {
      const agent = yield* Agent
      yield* settle
      expect(connection.attempts()).toBe(1)
      yield* agent.reconnectNow
      yield* settle
      expect(connection.attempts()).toBe(2)
    }).pipe(Effect.provide(Z4j.layerWith(options, connection.layer)))
  })
})
