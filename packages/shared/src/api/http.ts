import { Agent, type Dispatcher, FormData, ProxyAgent, request } from 'undici';
import { annotate, inSpan } from '../tracing/index.js';
import { TransportError, WeChatApiError } from './errors.js';

export interface HttpOptions {
  /** WeChat API origin, e.g. https://api.weixin.qq.com or a simulator. */
  baseUrl: string;
  /** An HTTP(S) proxy whose egress IP is on the accounts' API whitelist. */
  proxy?: string | undefined;
  /** Connect / response-headers / body timeouts. */
  timeoutMs?: number;
  connections?: number;
}

export interface CallOptions {
  method?: 'GET' | 'POST';
  query?: Record<string, string>;
  json?: unknown;
  form?: FormData;
  /** Return the raw bytes instead of parsing JSON (media/get). */
  binary?: boolean;
}

/** The one HTTP client for the WeChat API: a keep-alive pool with bounded timeouts, errcodes as typed errors. */
export class WeChatHttp {
  private readonly dispatcher: Dispatcher;
  private readonly baseUrl: string;
  /** A call's span attributes: where it goes (never the query, which holds the access_token). */
  private readonly server: { 'server.address': string; 'server.port': number };

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
    const base = new URL(this.baseUrl);
    this.server = {
      'server.address': base.hostname,
      'server.port': Number(base.port) || (base.protocol === 'https:' ? 443 : 80),
    };
  }

  /**
   * Calls `path`; resolves the JSON answer (errcode 0 or absent), throws WeChatApiError or TransportError. While
   * tracing is on, in a client span `<METHOD> <path>` with the HTTP status and `wechat.errcode`.
   */
  call<T = Record<string, unknown>>(path: string, options: CallOptions = {}): Promise<T> {
    const method = options.method ?? (options.json !== undefined || options.form ? 'POST' : 'GET');
    const attributes = { 'http.request.method': method, 'url.path': path, ...this.server };
    return inSpan(`${method} ${path}`, attributes, () => this.request<T>(path, method, options), {
      kind: 'client',
      onSuccess: { 'wechat.errcode': 0 },
    });
  }

  private async request<T>(path: string, method: 'GET' | 'POST', options: CallOptions): Promise<T> {
    const url = `${this.baseUrl}${path}${options.query ? `?${new URLSearchParams(options.query)}` : ''}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        dispatcher: this.dispatcher,
        method,
        ...(options.json !== undefined
          ? { body: JSON.stringify(options.json), headers: { 'content-type': 'application/json' } }
          : options.form
            ? { body: options.form }
            : {}),
      });
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      const kind = code.includes('TIMEOUT') ? 'timeout' : 'network';
      throw new TransportError(`${path}: ${code || (error as Error).message}`, path, kind);
    }
    annotate({ 'http.response.status_code': res.statusCode });
    if (res.statusCode >= 400) {
      await res.body.dump();
      throw new TransportError(`${path}: HTTP ${res.statusCode}`, path, 'http');
    }
    const bytes = Buffer.from(await res.body.arrayBuffer().catch(() => new ArrayBuffer(0)));
    const isJson = String(res.headers['content-type'] ?? '').includes('json') || bytes[0] === 0x7b;
    if (options.binary && !isJson) return bytes as T;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new TransportError(`${path}: answer is not JSON`, path, 'body');
    }
    const errcode = typeof parsed.errcode === 'number' ? parsed.errcode : 0;
    if (errcode !== 0) throw new WeChatApiError(errcode, String(parsed.errmsg ?? ''), path);
    return parsed as T;
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

export { FormData };
