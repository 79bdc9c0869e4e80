//! The console's look: one global sheet, built once (stylist's `Global`).

use stylist::css;
use stylist::yew::Global;
use yew::prelude::*;

#[function_component(ConsoleStyle)]
pub fn console_style() -> Html {
    let css = css!(
        r#"
        :root { color-scheme: light dark; --bg: #f6f7f9; --panel: #ffffff; --fg: #1f2328; --muted: #5b6470;
                --line: #d9dde3; --accent: #4f46e5; --accent-fg: #ffffff; --bad-bg: #fff1f0; --bad-fg: #a4161a;
                --ok-bg: #ecfdf3; --ok-fg: #05603a; }
        @media (prefers-color-scheme: dark) {
            :root { --bg: #111317; --panel: #1a1d23; --fg: #e8eaed; --muted: #a3aab4; --line: #343a43;
                    --accent: #8b85f7; --accent-fg: #111317; --bad-bg: #3a1717; --bad-fg: #ffb3b0;
                    --ok-bg: #0f2e1f; --ok-fg: #a6f4c5; }
        }
        *, *::before, *::after { box-sizing: border-box; }
        html, body { margin: 0; background: var(--bg); color: var(--fg);
                     font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
        :focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
        h1 { font-size: 22px; margin: 0 0 16px; }
        h2 { font-size: 17px; margin: 24px 0 10px; }
        a { color: var(--accent); }
        button, input, select { font: inherit; }
        button { border: 1px solid var(--line); background: var(--panel); color: var(--fg); border-radius: 8px;
                 padding: 7px 14px; cursor: pointer; }
        button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-fg); font-weight: 600; }
        button:disabled { opacity: .5; cursor: default; }
        input, select { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; background: var(--panel);
                        color: var(--fg); width: 100%; }
        label { display: block; font-weight: 600; margin: 12px 0 4px; }
        .card { background: var(--panel); border: 1px solid var(--line); border-radius: 12px; padding: 24px; }
        .center { min-height: 100vh; display: grid; place-items: center; padding: 24px; }
        .center .card { width: min(420px, 100%); }
        .brand { font-weight: 800; letter-spacing: -.01em; }
        .muted { color: var(--muted); }
        .error { background: var(--bad-bg); color: var(--bad-fg); border-radius: 8px; padding: 8px 12px; margin: 12px 0; }
        .ok { background: var(--ok-bg); color: var(--ok-fg); border-radius: 8px; padding: 8px 12px; margin: 12px 0; }
        .actions { display: flex; gap: 8px; margin-top: 18px; align-items: center; flex-wrap: wrap; }
        header.bar { display: flex; align-items: center; gap: 12px; padding: 10px 20px; background: var(--panel);
                     border-bottom: 1px solid var(--line); }
        header.bar { flex-wrap: wrap; font-size: 14px; }
        header.bar nav { display: flex; gap: 2px; flex: 1 0 auto; }
        header.bar .who { margin-inline-start: auto; display: flex; align-items: center; gap: 12px; }
        td.buttons.wrap { white-space: normal; }
        td.buttons.wrap button { margin-block: 2px; }
        header.bar nav button { border: 0; background: transparent; white-space: nowrap; padding: 7px 10px; }
        header.bar > * { white-space: nowrap; }
        header.bar nav button[aria-current="page"] { background: var(--bg); font-weight: 600; }
        main { padding: 24px; max-width: 1100px; margin: 0 auto; }
        table { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line);
                border-radius: 12px; overflow: hidden; }
        th, td { text-align: start; padding: 9px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-size: 13px; color: var(--muted); font-weight: 600; }
        tr:last-child td { border-bottom: 0; }
        code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
        pre { background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 10px; white-space: pre-wrap;
              word-break: break-all; }
        textarea { font: inherit; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; width: 100%;
                   background: var(--panel); color: var(--fg); resize: vertical; }
        fieldset { border: 0; padding: 0; margin: 0; min-width: 0; }
        .pair { display: grid; grid-template-columns: 56px 1fr; gap: 8px; }
        .pair input[type=color] { padding: 2px; height: 40px; }
        .editor { display: grid; grid-template-columns: minmax(0, 1fr) 400px; gap: 24px; align-items: start; }
        .preview { position: sticky; top: 16px; }
        .preview p { margin: 0 0 6px; font-size: 13px; }
        .preview iframe { width: 400px; height: 640px; border: 1px solid var(--line); border-radius: 16px; background: #fff; display: block; }
        .transcript { list-style: none; padding: 0; margin: 0; display: flex; flex-direction: column; gap: 10px; }
        .turn { background: var(--panel); border: 1px solid var(--line); border-radius: 12px; padding: 10px 14px; }
        .turn.user { border-inline-start: 4px solid var(--accent); }
        .turn p { margin: 0; }
        .turn .content { white-space: pre-wrap; margin-top: 4px; }
        .turn .rating { margin-top: 6px; font-size: 13px; font-weight: 600; }
        .turn .rating.down { color: var(--bad-fg); }
        .turn .rating.up { color: var(--ok-fg); }
        pre.ok { white-space: pre-wrap; font: inherit; }
        .row { display: grid; grid-template-columns: 2fr 1fr auto; gap: 10px; align-items: end; }
        .row label { margin-top: 0; }
        h3 { font-size: 15px; margin: 16px 0 8px; }
        .small { font-size: 13px; }
        .bad { color: var(--bad-fg); }
        .pill { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 13px; font-weight: 600;
                background: var(--bg); border: 1px solid var(--line); }
        .pill.ready { background: var(--ok-bg); color: var(--ok-fg); border-color: transparent; }
        .pill.failed { background: var(--bad-bg); color: var(--bad-fg); border-color: transparent; }
        td.buttons { white-space: nowrap; }
        td.buttons button { padding: 4px 10px; margin-inline-end: 4px; }
        progress { display: block; width: 140px; accent-color: var(--accent); }
        tr.faded td { background: var(--bg); }
        section.card { margin-top: 16px; }
        form.try { margin-bottom: 12px; }
        .filters { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 4px 14px; padding: 12px 16px 16px; }
        .filters label { margin-top: 6px; }
        .filters .check { display: flex; align-items: center; gap: 8px; grid-column: span 2; padding-top: 26px; }
        .filters .check input { width: auto; }
        .filters .check label { margin: 0; font-weight: 500; }
        a.button { display: inline-block; border: 1px solid var(--line); background: var(--panel); color: var(--fg); border-radius: 8px;
                   padding: 7px 14px; text-decoration: none; }
        .cited { margin: 6px 0 0; padding-inline-start: 0; list-style: none; font-size: 13px; }
        .rating.down { color: var(--bad-fg); font-weight: 600; }
        .rating.up { color: var(--ok-fg); font-weight: 600; }
        .turn.marked { outline: 2px solid var(--bad-fg); outline-offset: 2px; }
        tr.cases td { background: var(--bg); }
        tr.cases ul { margin: 0; padding-inline-start: 18px; }
        tr.cases li { margin: 6px 0; }
        tr.cases button { padding: 2px 10px; margin-inline-start: 6px; }
        .filters + table, .actions + table { margin-top: 16px; }
        .tiles { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 12px; margin: 16px 0 8px; }
        .tile { background: var(--panel); border: 1px solid var(--line); border-radius: 12px; padding: 12px 14px; }
        .tile p { margin: 0; }
        .tile .figure { font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
        .charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
        figure.chart { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 12px; padding: 12px 14px; }
        figure.chart figcaption { font-weight: 600; }
        figure.chart svg { width: 100%; height: auto; display: block; }
        svg .axis { fill: var(--muted); font-size: 17px; }
        svg .grid { stroke: var(--line); stroke-dasharray: 4 4; }
        svg .base { stroke: var(--muted); }
        svg .hit { fill: transparent; }
        svg g:hover .hit { fill: var(--bg); }
        .s0 { fill: var(--accent); background: var(--accent); }
        .s1 { fill: var(--bad-fg); background: var(--bad-fg); }
        .s2 { fill: var(--ok-fg); background: var(--ok-fg); }
        .s3 { fill: var(--muted); background: var(--muted); }
        ul.legend { display: flex; gap: 14px; list-style: none; padding: 0; margin: 6px 0 0; font-size: 13px; }
        .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 3px; margin-inline-end: 6px; }
        .scroll { overflow-x: auto; }
        .pair2 { display: grid; grid-template-columns: 1fr 1fr; gap: 0 12px; align-items: end; }
        .check { display: flex; align-items: center; gap: 8px; }
        .check input { width: auto; }
        .check label { margin: 4px 0; font-weight: 500; }
        legend { font-weight: 600; margin-top: 12px; }
        td details pre { max-width: 420px; }
        td.num { text-align: end; font-variant-numeric: tabular-nums; }
        "#
    );
    html! { <Global css={css} /> }
}
