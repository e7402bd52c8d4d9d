import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WECOM_ERRCODES } from '../channel/wecom/errcodes.js';
import { decide, ERRCODES, type ErrcodeRow, errcodeRule } from './errcodes.js';
import { WeChatApiError } from './errors.js';

/** One row of docs/wechat-protocol.md §9: its codes, the retry recommendation and the wx-kf column. */
interface DocRow {
  codes: number[];
  retry: string;
  wxkf: string;
}

/** The rows of a table that name errcodes (not `0`, not the transport row): §9's, or WeCom's §15.7. */
function docRows(from = '\n## 9. ', to = '\n## 10. '): DocRow[] {
  const page = readFileSync(new URL('../../../../docs/wechat-protocol.md', import.meta.url), 'utf8');
  const start = page.indexOf(from);
  const end = page.indexOf(to, start + 1);
  const section = page.slice(start, end === -1 ? undefined : end);
  const rows: DocRow[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    // '', code, meaning, retry?, wx-kf, ''
    if (cells.length !== 6 || !/^-?\d+( \/ -?\d+)*$/.test(cells[1] as string)) continue;
    const codes = (cells[1] as string).split(' / ').map(Number);
    if (codes.includes(0)) continue;
    rows.push({ codes, retry: cells[3] as string, wxkf: cells[4] as string });
  }
  return rows;
}

/** The wx-kf column as a row: "`fail`, window closed, HTTP 409", "`fail`, grants cleared"; `—` is no row. */
function parseColumn(cell: string): ErrcodeRow | undefined {
  if (cell === '—') return undefined;
  const m =
    /^`(\w+)`(?:, window (exhausted|closed))?(?:, grants (cleared))?(?:, (session read again))?(?:, HTTP (\d{3}))?$/.exec(
      cell,
    );
  if (!m) throw new Error(`unreadable wx-kf cell: ${cell}`);
  return {
    action: m[1] as ErrcodeRow['action'],
    ...(m[2] ? { window: m[2] as 'exhausted' | 'closed' } : {}),
    ...(m[3] ? { grant: 'cleared' as const } : {}),
    ...(m[4] ? { session: 'refresh' as const } : {}),
    ...(m[5] ? { http: Number(m[5]) } : {}),
  };
}

describe("WeCom's errcode table (docs/wechat-protocol.md §15.7)", () => {
  const rows = docRows('\n### 15.7 ', '\n## ');
  it('lists exactly the rows of WECOM_ERRCODES, with the same action, window, session and HTTP status', () => {
    const documented = rows.flatMap((row) => row.codes.map((code) => [code, parseColumn(row.wxkf)] as const));
    expect(new Map(documented)).toEqual(new Map(Object.entries(WECOM_ERRCODES).map(([k, v]) => [Number(k), v])));
    expect(errcodeRule(40001, WECOM_ERRCODES).action).toBe('config'); // the secret, not a stale token as on WeChat
    expect(errcodeRule(95018, WECOM_ERRCODES)).toEqual({ action: 'fail', session: 'refresh', http: 409 });
  });
});

describe('the errcode table', () => {
  const rows = docRows();
  const documented = new Map(rows.flatMap((row) => row.codes.map((code) => [code, row] as const)));

  it('docs/wechat-protocol.md §9 lists every row, with the same action, window and HTTP status', () => {
    expect(rows.length).toBeGreaterThan(30);
    for (const [key, row] of Object.entries(ERRCODES)) {
      const doc = documented.get(Number(key));
      expect(doc, `errcode ${key} is not in §9`).toBeDefined();
      expect(parseColumn(doc?.wxkf ?? ''), `errcode ${key}`).toEqual(row);
    }
  });

  it('every code §9 gives a wx-kf meaning is a row, and every code it leaves out is permanent', () => {
    for (const row of rows) {
      for (const code of row.codes) {
        const listed = parseColumn(row.wxkf);
        expect(ERRCODES[code], `errcode ${code}`).toEqual(listed);
        if (!listed) expect(errcodeRule(code), `errcode ${code}`).toEqual({ action: 'fail', http: 400 });
      }
    }
  });

  it('agrees with the retry recommendations in §9', () => {
    for (const { codes, retry } of rows) {
      for (const code of codes) {
        const { action, window } = errcodeRule(code);
        const expected = retry.startsWith('yes')
          ? 'retry'
          : retry.startsWith('re-upload')
            ? 'reupload_media'
            : retry.includes('retry once')
              ? 'refresh_token'
              : undefined;
        if (expected) expect(action, `errcode ${code}: ${retry}`).toBe(expected);
        else expect(['retry', 'refresh_token', 'reupload_media'], `errcode ${code}: ${retry}`).not.toContain(action);
        // "wait for next user action": the refusal speaks for the user's window, which the ledger must learn.
        expect(window !== undefined, `errcode ${code}: ${retry}`).toBe(retry.includes('wait for next user action'));
      }
    }
  });

  it('is well formed: a window or a grant effect only on a permanent refusal, HTTP statuses that are errors', () => {
    for (const [key, row] of Object.entries(ERRCODES)) {
      expect(Number.isInteger(Number(key)), key).toBe(true);
      if (row.window || row.grant) expect(row.action, key).toBe('fail');
      if (row.http !== undefined) expect(row.http >= 400 && row.http < 600, key).toBe(true);
    }
  });

  it('reads a row with the HTTP status filled in from the action, and unlisted codes as permanent', () => {
    expect(errcodeRule(45047)).toEqual({ action: 'fail', window: 'exhausted', http: 400 });
    expect(errcodeRule(45015)).toEqual({ action: 'fail', window: 'closed', http: 400 });
    expect(errcodeRule(45011)).toEqual({ action: 'retry', http: 429 });
    expect(errcodeRule(-1)).toEqual({ action: 'retry', http: 502 });
    expect(errcodeRule(40001)).toEqual({ action: 'refresh_token', http: 502 });
    expect(errcodeRule(40164)).toEqual({ action: 'config', http: 502 });
    expect(errcodeRule(45009)).toEqual({ action: 'pause_account', http: 400 });
    expect(errcodeRule(65414)).toEqual({ action: 'fail', http: 409 });
    expect(errcodeRule(43101)).toEqual({ action: 'fail', grant: 'cleared', http: 400 });
    expect(errcodeRule(12345)).toEqual({ action: 'fail', http: 400 });
    for (const code of [...Object.keys(ERRCODES).map(Number), 12345]) {
      expect(decide(code)).toBe(errcodeRule(code).action);
      expect(new WeChatApiError(code, 'x', '/p').action).toBe(errcodeRule(code).action);
    }
  });
});
