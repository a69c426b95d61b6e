// Types for the parts of syslog-client (no bundled types) that we use.
declare module 'syslog-client' {
  export const Transport: { Tcp: number; Udp: number };
  export const Severity: { Error: number; Warning: number; Notice: number; Informational: number; Debug: number };
  export const Facility: { Daemon: number; Local0: number; User: number };
  export interface ClientOptions {
    transport?: number;
    port?: number;
    syslogHostname?: string;
    facility?: number;
    rfc3164?: boolean;
    appName?: string;
    tcpTimeout?: number;
  }
  export interface Client {
    log(message: string, options: { severity?: number; facility?: number }, cb: (err?: Error) => void): void;
    close(): void;
    on(event: 'error', fn: (err: Error) => void): void;
  }
  export function createClient(target: string, options?: ClientOptions): Client;
}
