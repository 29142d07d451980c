// The few parts of oidc-provider's API these tests use (the package ships no types; its
// configuration is documented in its docs/README.md).
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void> | void
    on(event: string, listener: (...args: any[]) => void): this
  }
}
