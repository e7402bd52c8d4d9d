import { Agent, type Dispatcher, FormData, ProxyAgent, request } from 'undici';
import type { z } from 'zod';
import { isRecord } from '../record.js';
import { annotate, inSpan } from '../tracing/index.js';
import type { ErrcodeTable } from './errcodes.js';
import { TransportError, WeChatApiError } from './errors.js';

export interface HttpOptions {
  /** WeChat API origin, e.g. https://api.weixin.qq.com or a simulator. */
  baseUrl: string;
  /** An HTTP(S) proxy whose egress IP is on the accounts' API whitelist. */
  proxy?: string | undefined;
  /** Connect / response-headers / body timeouts. */
  timeoutMs?: number;
  connections?: number;
  /** What its errcodes mean (WeChat's table by default; a WeCom client passes WeCom's). */
  errcodes?: ErrcodeTable;
}

export interface CallOptions {
  method?: 'GET' | 'POST';
  query?: Record<string, string>;
  json?: unknown;
  form?: FormData;
}

/** A JSON answer's errcode as WeChatApiError (errcode 0 or absent is no error). */
function throwErrcode(answer: Record<string, unknown>, path: string, table: ErrcodeTable | undefined): void {
  const errcode = typeof answer.errcode === 'number' ? answer.errcode : 0;
  if (errcode !== 0) throw new WeChatApiError(errcode, String(answer.errmsg ?? '').slice(0, 200), path, table);
}

/** The one HTTP client for the WeChat API: a keep-alive pool with bounded timeouts, errcodes as typed errors. */
export class WeChatHttp {
  private readonly dispatcher: Dispatcher;
  private readonly baseUrl: string;
  /** A call's span attributes: where it goes. */
  private readonly server: { 'server.address': string; 'server.port': number };
  private readonly errcodes: ErrcodeTable | undefined;

  constructor(options: HttpOptions) {
    const timeout = options.timeoutMs ?? 5000;
    const common = {
      connect: { timeout: Math.min(timeout, 3000) },
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: 30_000,
      connections: options.connections ?? 256,
    };
    this.dispatcher = options.proxy ? new ProxyAgent({ uri: options.proxy, ...common }) : new Agent(common);
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.errcodes = options.errcodes;
    const base = new URL(this.baseUrl);
    this.server = {
      'server.address': base.hostname,
      'server.port': Number(base.port) || (base.protocol === 'https:' ? 443 : 80),
    };
  }

  /**
   * Calls `path`; resolves the JSON answer (errcode 0 or absent), read with `answer` when given (an answer it
   * does not describe is a TransportError `body`); throws WeChatApiError or TransportError.
   */
  async call(path: string, options?: CallOptions): Promise<Record<string, unknown>>;
  async call<T>(path: string, options: CallOptions, answer: z.ZodType<T>): Promise<T>;
  async call<T>(path: string, options: CallOptions = {}, answer?: z.ZodType<T>): Promise<T | Record<string, unknown>> {
    // While tracing is on, in a client span `<METHOD> <path>` with the HTTP status and `wechat.errcode` (never
    // the query, which holds the access_token).
    const method = options.method ?? (options.json !== undefined || options.form ? 'POST' : 'GET');
    const attributes = { 'http.request.method': method, 'url.path': path, ...this.server };
    const work = async () => {
      const { bytes } = await this.fetch(path, options);
      const parsed = this.parse(path, bytes);
      throwErrcode(parsed, path, this.errcodes);
      if (!answer) return parsed;
      const read = answer.safeParse(parsed);
      if (!read.success)
        throw new TransportError(`${path}: unexpected answer (${read.error.issues[0]?.message})`, path, 'body');
      return read.data;
    };
    return inSpan(`${method} ${path}`, attributes, work, { kind: 'client', onSuccess: { 'wechat.errcode': 0 } });
  }

  /** Calls `path` for bytes (media/get): a JSON answer is an errcode, thrown as WeChatApiError, or the bytes. */
  async download(path: string, options: CallOptions = {}): Promise<Buffer> {
    const { bytes, json } = await this.fetch(path, options);
    if (json) throwErrcode(this.parse(path, bytes), path, this.errcodes);
    return bytes;
  }

  private async fetch(path: string, options: CallOptions): Promise<{ bytes: Buffer; json: boolean }> {
    const url = `${this.baseUrl}${path}${options.query ? `?${new URLSearchParams(options.query)}` : ''}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        dispatcher: this.dispatcher,
        method: options.method ?? (options.json !== undefined || options.form ? 'POST' : 'GET'),
        ...(options.json !== undefined
          ? { body: JSON.stringify(options.json), headers: { 'content-type': 'application/json' } }
          : options.form
            ? { body: options.form }
            : {}),
      });
    } catch (error) {
      const code = isRecord(error) && typeof error.code === 'string' ? error.code : '';
      const kind = code.includes('TIMEOUT') ? 'timeout' : 'network';
      throw new TransportError(
        `${path}: ${code || (error instanceof Error ? error.message : String(error))}`,
        path,
        kind,
      );
    }
    annotate({ 'http.response.status_code': res.statusCode });
    if (res.statusCode >= 400) {
      await res.body.dump();
      throw new TransportError(`${path}: HTTP ${res.statusCode}`, path, 'http');
    }
    const bytes = Buffer.from(await res.body.arrayBuffer().catch(() => new ArrayBuffer(0)));
    return { bytes, json: String(res.headers['content-type'] ?? '').includes('json') || bytes[0] === 0x7b };
  }

  private parse(path: string, bytes: Buffer): Record<string, unknown> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new TransportError(`${path}: answer is not JSON`, path, 'body');
    }
    if (!isRecord(parsed)) throw new TransportError(`${path}: answer is not a JSON object`, path, 'body');
    return parsed;
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

export { FormData };
