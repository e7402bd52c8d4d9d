/** Text for HTML, escaped: element content and quoted attribute values alike. Everything shown goes through it. */
export function esc(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** A path of the page: each segment URI-encoded (an escaped attribute value still needs `esc`). */
export const pagePath = (...segments: string[]): string => `/users/${segments.map(encodeURIComponent).join('/')}`;

/** The dashboard's page of one job. */
export const jobPath = (queue: string, id: string): string =>
  `/ui/queue/${encodeURIComponent(queue)}/${encodeURIComponent(id)}`;

/**
 * The pages load nothing but their own stylesheet: no script at all, forms post only here, no framing (a confirm
 * button cannot be clicked through another site's page).
 */
export const PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** A whole page: the title, the navigation and `body` (already HTML: build it with `esc`). */
export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${esc(title)} · wx-kf</title>
<link rel="stylesheet" href="/users/style.css">
</head>
<body>
<header><a class="brand" href="/users">wx-kf</a><nav><a href="/users">Conversations</a><a href="/ui">Queues</a></nav></header>
<main>
${body}
</main>
</body>
</html>
`;
}

/** The pages' stylesheet, served at /users/style.css. */
export const STYLE = `
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; --accent: #0b6e4f;
  --warn: #b44d12; --bad: #ba2525; --human: #5a3fc0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: var(--bg); }
header { display: flex; gap: 24px; align-items: center; padding: 10px 24px; background: #102a43; }
header a { color: #f0f4f8; text-decoration: none; }
header .brand { font-weight: 700; }
header nav { display: flex; gap: 16px; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 4px 0 16px; word-break: break-all; }
h2 { font-size: 17px; margin: 0 0 8px; }
a { color: #0b5cad; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; margin-bottom: 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.card p { margin: 4px 0; }
.state { font-weight: 600; }
.open { color: var(--accent); }
.closed { color: var(--muted); }
.human { color: var(--human); }
.notice { background: #e3f9e5; border: 1px solid #8eedc7; border-radius: 6px; padding: 8px 12px; margin-bottom: 16px; }
.error { background: #ffe3e3; border: 1px solid #f29b9b; border-radius: 6px; padding: 8px 12px; margin-bottom: 16px; }
form.lookup { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; background: #fff; border: 1px solid var(--line);
  border-radius: 8px; padding: 14px 16px; margin-bottom: 20px; }
label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: var(--muted); }
input, select { font: inherit; padding: 6px 8px; border: 1px solid #bcccdc; border-radius: 6px; min-width: 220px; }
button, .button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid #0b5cad; background: #0b5cad;
  color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
.button.secondary { background: #fff; color: #0b5cad; }
button.danger, .button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
.actions { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 8px; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; background: #f0f4f8; }
td.when { white-space: nowrap; font-variant-numeric: tabular-nums; color: var(--muted); font-size: 13px; }
td.text { word-break: break-word; }
.dir { display: inline-block; min-width: 38px; text-align: center; border-radius: 10px; font-size: 12px; padding: 1px 8px; }
.dir.in { background: #e0e8f9; color: #243b53; }
.dir.out { background: #e3f9e5; color: #05400a; }
.dir.transfer { background: #eae2f8; color: var(--human); }
.outcome.bad { color: var(--bad); }
.outcome.wait { color: var(--warn); }
.outcome.human { color: var(--human); font-weight: 600; }
code { font-size: 12px; word-break: break-all; }
`;
