"""``perf dashboard``: one self-contained HTML page (plotly.js and the data embedded, no
network) with the history's trends, the last runs, a run's resources, providers,
regressions, advice and health."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from videodub.media import atomic_path

STAGE_ORDER = ("ingest", "transcribe", "translate", "align", "tts", "mix", "mux")
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}.grid{display:grid;
grid-template-columns:1fr 1fr;gap:1em}table{border-collapse:collapse}td,th{padding:.25em .6em;
border-bottom:1px solid #ddd;text-align:left}.note{color:#555}.CRITICAL{color:#b00;
font-weight:bold}.HIGH{color:#d40}.MEDIUM{color:#a70}.LOW{color:#777}"""


def _trends(runs: list[Any]) -> Any:
    import plotly.graph_objects as go

    # Per minute of media, as regressions are judged: a two-hour job beside one-minute ones
    # would otherwise flatten every other point to the axis.
    series: dict[str, tuple[list[str], list[float]]] = defaultdict(lambda: ([], []))
    for r in runs:
        for s in r.stages if r.media_s else ():
            series[s.stage][0].append(r.started_at)
            series[s.stage][1].append(s.wall_s * 60 / r.media_s)
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines+markers", name=stage)
                     for stage in STAGE_ORDER if stage in series
                     for xs, ys in [series[stage]]])
    fig.update_layout(title="stage wall per media minute, 30 days",
                      yaxis_title="s per min",
                      height=380, margin=dict(t=50, l=50, r=20, b=40))
    return fig


def _breakdown(runs: list[Any]) -> Any:
    import plotly.graph_objects as go

    last = runs[-15:]
    labels = [f"#{i + 1} {r.profile}" for i, r in enumerate(last)]
    fig = go.Figure([go.Bar(name=stage, x=labels,
                            y=[next((s.wall_s for s in r.stages if s.stage == stage), 0)
                               for r in last]) for stage in STAGE_ORDER])
    fig.update_layout(barmode="stack", title="stage breakdown of the last runs",
                      yaxis_title="s", height=380, margin=dict(t=50, l=50, r=20, b=40))
    return fig


def _resources(run: Any) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    t = [p[0] for p in run.timeline]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=t, y=[p[1] for p in run.timeline], name="CPU %"))
    fig.add_trace(go.Scatter(x=t, y=[p[2] for p in run.timeline], name="RSS MiB"),
                  secondary_y=True)
    fig.update_layout(title="CPU and RSS (with children), last run",
                      xaxis_title="s", height=380, margin=dict(t=50, l=50, r=50, b=40))
    return fig


def _providers(runs: list[Any]) -> Any:
    import plotly.graph_objects as go

    p50: dict[str, list[float]] = defaultdict(list)
    p95: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for r in runs:
        for p in r.providers:
            key = f"{p.stage} {p.model}"
            if p.p50_ms is not None:
                p50[key].append(p.p50_ms)
                p95[key].append(p.p95_ms or p.p50_ms)
            errors[key] += p.rate_limited + p.timeouts + p.errors
    names = sorted(errors)
    fig = go.Figure([
        go.Bar(name="latency p50 ms", x=names, y=[_median(p50[n]) for n in names]),
        go.Bar(name="latency p95 ms", x=names, y=[_median(p95[n]) for n in names]),
        go.Bar(name="429s + timeouts + errors", x=names, y=[errors[n] for n in names],
               yaxis="y2")])
    fig.update_layout(title="API latency and errors per provider", barmode="group",
                      # Counts: whole numbers from zero (with none, plotly's own range for
                      # the axis ran from -1 to 0 in fractions).
                      yaxis2=dict(overlaying="y", side="right", title="errors", showgrid=False,
                                  rangemode="tozero", tickformat="d",
                                  range=None if any(errors.values()) else [0, 1], dtick=None
                                  if any(errors.values()) else 1),
                      height=380, margin=dict(t=50, l=50, r=50, b=40))
    return fig


def _health(h: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(go.Indicator(mode="gauge+number", value=h["score"],
                                 title={"text": "health"},
                                 gauge={"axis": {"range": [0, 100]}}))
    fig.update_layout(height=260, margin=dict(t=40, l=30, r=30, b=10))
    return fig


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


def render(data: dict[str, Any]) -> str:
    """The page for ``videodub.perf.data.gather``'s result."""
    runs, latest, h = data["runs"], data["latest"], data["health"]
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>videodub performance"
             f"</title><style>{STYLE}</style></head><body><h1>videodub performance</h1>",
             f"<p class='note'>history: {e(data['history'])}; {len(runs)} runs shown</p>"]
    if data["note"]:
        parts.append(f"<p class='note' id='note'>{e(data['note'])}</p>")
    figures = [("health", _health(h))]
    if runs:
        figures += [("trends", _trends(runs)), ("breakdown", _breakdown(runs))]
        if latest is not None and latest.timeline:
            figures.append(("resources", _resources(latest)))
        if any(r.providers for r in runs):
            figures.append(("providers", _providers(runs)))
    parts.append("<div class='grid'>")
    for i, (name, fig) in enumerate(figures):
        # plotly.js goes in once, with the first figure; the others use it.
        parts.append(f"<div class='plot' id='plot-{name}'>"
                     + fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                                   config={"displaylogo": False}) + "</div>")
    parts.append("</div>")
    parts.append("<h2>health</h2><table><tr>"
                 + "".join(f"<th>{e(k)}</th>" for k in h["parts"]) + "<th>score</th></tr><tr>"
                 + "".join(f"<td>{v:.0f}</td>" for v in h["parts"].values())
                 + f"<td>{h['score']:.0f}</td></tr></table>")
    parts.append("<h2>active regressions</h2>")
    if data["regressions"]:
        parts.append("<table id='regressions'><tr><th>severity</th><th>figure</th><th>impl</th>"
                     "<th>value</th><th>baseline</th><th>change</th></tr>" + "".join(
                         f"<tr class='{e(r['severity'])}'><td>{e(r['severity'])}</td>"
                         f"<td>{e(r['metric'])}</td><td>{e(r['impl'])}</td>"
                         f"<td>{r['value']:.3g}</td><td>{r['baseline']:.3g}</td>"
                         f"<td>{r['change']:+.0%}</td></tr>" for r in data["regressions"])
                     + "</table>")
    else:
        parts.append("<p class='note'>none in the last run</p>")
    parts.append("<h2>top recommendations</h2>")
    if data["recommendations"]:
        parts.append("<ol id='recommendations'>" + "".join(
            f"<li><b>{e(r['title'])}</b> — <code>{e(r['change'])}</code> "
            f"(impact {e(r['impact'])}, effort {e(r['effort'])}, {e(r['category'])})"
            f"<br><span class='note'>{e(r['why'])}</span></li>"
            for r in data["recommendations"]) + "</ol>")
    else:
        parts.append("<p class='note'>none</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(data: dict[str, Any], out: Path) -> Path:
    """Write the page under a temporary name, then rename: never half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(render(data), encoding="utf-8")
    return out
