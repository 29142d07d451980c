// A real redis-server (Debian package) on 127.0.0.1, started and stopped by the tests.
import { spawn, type ChildProcess } from 'node:child_process'
import { createClient } from 'redis'

export interface RedisServer {
  url: string
  stop(): Promise<void>
}

export async function startRedis(): Promise<RedisServer> {
  let lastError: unknown
  // redis-server cannot take port 0, so pick one below Linux's ephemeral range (32768+), where
  // the other suites' servers and connections live; if it is taken anyway, try another.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 12_000 + Math.floor(Math.random() * 18_000)
    try {
      return await startOn(port)
    } catch (error) {
      lastError = error
    }
  }
  throw lastError
}

async function startOn(port: number): Promise<RedisServer> {
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  for (let attempt = 0; ; attempt++) {
    const probe = createClient({ url, socket: { reconnectStrategy: false } })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      await probe.quit()
      // Answered, but by whom? If our process died (port taken), that was someone else's server.
      await new Promise((resolve) => setTimeout(resolve, 50))
      if (child.exitCode !== null) throw new Error(`port ${port} is taken`)
      break
    } catch (error) {
      if (attempt > 100 || child.exitCode !== null || String(error).includes('is taken')) {
        child.kill()
        throw new Error(`redis-server did not start on ${url}: ${String(error)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}
