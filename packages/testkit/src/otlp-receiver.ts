import { createServer, type Server } from 'node:http';

/** A span as an OTLP/HTTP JSON export carries it, flattened: attribute values unwrapped. */
export interface ReceivedSpan {
  /** The exporting process's `service.name`. */
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string | undefined;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  status?: { code?: number; message?: string } | undefined;
}

// Readers of an OTLP/HTTP JSON export (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding), by name.
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
/** The objects of the list at `key` (none when it is absent). */
const objects = (value: unknown, key: string): Record<string, unknown>[] => {
  const list = isObject(value) ? value[key] : undefined;
  return Array.isArray(list) ? list.filter(isObject) : [];
};
const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
const nanos = (value: unknown) => (typeof value === 'string' || typeof value === 'number' ? value : 0);

/** An AnyValue's value: its string, int (a number), double, bool or array. */
const unwrap = (v: unknown): unknown => {
  if (!isObject(v)) return undefined;
  const int = typeof v.intValue === 'string' || typeof v.intValue === 'number' ? Number(v.intValue) : undefined;
  const values = isObject(v.arrayValue) ? v.arrayValue.values : undefined;
  return (
    v.stringValue ?? int ?? v.doubleValue ?? v.boolValue ?? (Array.isArray(values) ? values.map(unwrap) : undefined)
  );
};
/** A KeyValue list as an object. */
const record = (owner: unknown) =>
  Object.fromEntries(objects(owner, 'attributes').map((kv) => [String(kv.key), unwrap(kv.value)]));
const ms = (value: string | number) => Number(BigInt(value) / 1_000_000n);

/** One exported span, flattened. */
function spanOf(s: Record<string, unknown>, service: string): ReceivedSpan {
  const status = isObject(s.status)
    ? { code: typeof s.status.code === 'number' ? s.status.code : undefined, message: text(s.status.message) }
    : undefined;
  return {
    service,
    traceId: String(s.traceId),
    spanId: String(s.spanId),
    parentSpanId: text(s.parentSpanId) || undefined,
    name: String(s.name),
    kind: Number(s.kind),
    startMs: ms(nanos(s.startTimeUnixNano)),
    endMs: ms(nanos(s.endTimeUnixNano)),
    attributes: record(s),
    events: objects(s, 'events').map((e) => ({ name: String(e.name), attributes: record(e) })),
    status,
  };
}

/**
 * An OTLP/HTTP trace receiver on loopback, for tests and benchmarks: POST /v1/traces is answered 200 at once.
 * JSON exports (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) are parsed into `spans`, with every body kept raw in
 * `bodies`; protobuf ones are only counted (`requests`, `bytes`).
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly bodies: string[] = [];
  requests = 0;
  bytes = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        receiver?.take(req.url ?? '', String(req.headers['content-type']), body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    receiver = new OtlpReceiver(
      server,
      `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    );
    return receiver;
  }

  private take(path: string, contentType: string, bytes: Buffer): void {
    this.requests++;
    this.bytes += bytes.length;
    if (!path.startsWith('/v1/traces') || !contentType.includes('json')) return;
    const body = bytes.toString('utf8');
    this.bodies.push(body);
    for (const rs of objects(JSON.parse(body), 'resourceSpans')) {
      const service = String(record(rs.resource)['service.name']);
      for (const ss of objects(rs, 'scopeSpans')) {
        for (const s of objects(ss, 'spans')) this.spans.push(spanOf(s, service));
      }
    }
  }

  /** The spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /** Resolves once `check` holds over the spans received so far (polled). */
  async waitFor(check: (spans: ReceivedSpan[]) => boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check(this.spans)) {
      if (Date.now() > deadline) {
        const names = [...new Set(this.spans.map((s) => `${s.service}: ${s.name}`))].join(', ');
        throw new Error(`spans not received within ${ms} ms (received: ${names || 'none'})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
