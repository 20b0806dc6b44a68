"""The run as a PDF a manager would rather look at than read: the business and the period, KPI
tiles, and charts (calls per day, intents, sentiment, response time percentiles, peak hours),
then the KPI table. Drawn with fpdf2's own shapes and its built-in Helvetica: no fonts or images
fetched from anywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from fpdf import FPDF

from analysis.reports.data import ReportData

INK, MUTED, BRAND = (33, 37, 41), (108, 117, 125), (13, 110, 153)
SENTIMENT_COLOURS = {"positive": (46, 160, 67), "neutral": (140, 150, 160),
                     "negative": (207, 34, 46), "friction": (230, 140, 20)}
PAGE_W, MARGIN = 210, 14


def _latin1(text: object) -> str:
    # The built-in fonts are Latin-1: anything else would stop the report, so it is replaced.
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


class Report(FPDF):
    def __init__(self, data: ReportData) -> None:
        super().__init__(format="A4")
        self.data = data
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(_latin1(f"Call analysis - {data.business}"))
        self.set_creator("frontdesk analysis")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(*MUTED)
        self.cell(0, 5, _latin1(f"{self.data.business} - call analysis run {self.data.run.id} - "
                                f"page {self.page_no()}"), align="C")

    def text_at(self, x: float, y: float, text: object, *, size: float = 9, style: str = "",
                colour: tuple[int, int, int] = INK, width: float = 0, align: str = "L") -> None:
        self.set_xy(x, y)
        self.set_font("Helvetica", style=style, size=size)
        self.set_text_color(*colour)
        self.cell(width, size * 0.45, _latin1(text), align=align)

    def header_band(self) -> None:
        run, data = self.data.run, self.data
        self.set_fill_color(*BRAND)
        self.rect(0, 0, PAGE_W, 34, style="F")
        self.text_at(MARGIN, 8, data.business, size=20, style="B", colour=(255, 255, 255))
        period = f"{run.period_from:%d %b %Y} to {run.period_to:%d %b %Y}"
        scope = data.location or "All locations"
        version = f", configuration v{run.config_version}" if run.config_version else ""
        self.text_at(MARGIN, 19, f"Call analysis report - {period}", size=11, colour=(255, 255, 255))
        self.text_at(MARGIN, 26, f"{scope}{version} - analysed by {run.analyser} - status {run.status}"
                     f" - generated {datetime.now(UTC):%d %b %Y %H:%M} UTC", size=8,
                     colour=(220, 235, 245))

    def tiles(self, y: float) -> float:
        k = self.data.kpis
        response = k.get("response_ms") or {}
        tiles = [("Calls", str(k.get("calls", 0))),
                 ("Avg quality", f"{k['avg_quality']}/10" if k.get("avg_quality") is not None else "-"),
                 ("Success", _pct(k.get("success_rate"))),
                 ("Booking conv.", _pct(k.get("booking_conversion"))),
                 ("Containment", _pct(k.get("containment"))),
                 ("Reply p50", _ms(response.get("p50")))]
        width = (PAGE_W - 2 * MARGIN - 5 * 3) / len(tiles)
        for i, (label, value) in enumerate(tiles):
            x = MARGIN + i * (width + 3)
            self.set_fill_color(238, 244, 248)
            self.rect(x, y, width, 20, style="F")
            self.text_at(x, y + 3, value, size=13, style="B", colour=BRAND, width=width, align="C")
            self.text_at(x, y + 12, label, size=8, colour=MUTED, width=width, align="C")
        return y + 26

    def bars(self, x: float, y: float, w: float, h: float, title: str,
             items: list[tuple[str, float]], *, colours: dict[str, tuple[int, int, int]] | None = None,
             label_every: int = 1, unit: str = "") -> None:
        """A vertical bar chart in the box (x, y, w, h) with its title above and labels below."""
        self.text_at(x, y, title, size=10, style="B")
        top, bottom = y + 7, y + h - 6
        self.set_draw_color(200, 200, 200)
        self.line(x, bottom, x + w, bottom)
        peak = max((v for _, v in items), default=0) or 1
        slot = w / max(len(items), 1)
        for i, (label, value) in enumerate(items):
            bar_h = (bottom - top - 4) * value / peak
            bx = x + i * slot + slot * 0.15
            self.set_fill_color(*(colours or {}).get(label, BRAND))
            if bar_h > 0:
                self.rect(bx, bottom - bar_h, slot * 0.7, bar_h, style="F")
            if len(items) <= 12 and value:
                self.text_at(bx - 2, bottom - bar_h - 3.5, f"{value:g}{unit}", size=6,
                             width=slot * 0.7 + 4, align="C")
            if i % label_every == 0:
                self.text_at(x + i * slot - 2, bottom + 1.2, label, size=6, colour=MUTED,
                             width=slot + 4, align="C")

    def kpi_table(self, y: float) -> None:
        k = self.data.kpis
        response = k.get("response_ms") or {}
        rows = [("Calls in the period", k.get("calls", 0)), ("Analysed", k.get("analysed", 0)),
                ("No conversation (caller never spoke)", k.get("no_conversation", 0)),
                ("Could not be analysed", k.get("failed", 0)),
                ("Average duration", f"{k.get('avg_duration_s') or 0} s"),
                ("Response time p50 / p90", f"{_ms(response.get('p50'))} / {_ms(response.get('p90'))}"
                 f" over {response.get('turns', 0)} replies"),
                ("Average agent quality (1-10)", k.get("avg_quality") or "-"),
                ("Success against the rubric", _pct(k.get("success_rate"))),
                ("Booking conversion (intent book -> booked)", _pct(k.get("booking_conversion"))),
                ("Containment (completed without a person)", _pct(k.get("containment"))),
                ("Journey stages", ", ".join(f"{s}: {n}" for s, n in
                                             sorted((k.get("journey_stages") or {}).items())) or "-")]
        self.text_at(MARGIN, y, "Key figures", size=11, style="B")
        y += 7
        for i, (name, value) in enumerate(rows):
            if i % 2 == 0:
                self.set_fill_color(246, 248, 250)
                self.rect(MARGIN, y - 1, PAGE_W - 2 * MARGIN, 6, style="F")
            self.text_at(MARGIN + 2, y, name, size=9)
            self.text_at(PAGE_W / 2, y, value, size=9, style="B")
            y += 6


def render_pdf(data: ReportData) -> bytes:
    pdf = Report(data)
    pdf.add_page()
    pdf.header_band()
    y = pdf.tiles(40)
    half = (PAGE_W - 2 * MARGIN - 8) / 2
    days = data.days()
    pdf.bars(MARGIN, y, PAGE_W - 2 * MARGIN, 50, "Calls per day",
             [(f"{d:%d %b}", n) for d, n in days], label_every=max(1, len(days) // 10))
    y += 56
    k = data.kpis
    intents = sorted((k.get("intents") or {}).items(), key=lambda item: -item[1])
    pdf.bars(MARGIN, y, half, 50, "Intent distribution", intents)
    sentiments = [(s, (k.get("sentiments") or {}).get(s, 0)) for s in SENTIMENT_COLOURS]
    pdf.bars(MARGIN + half + 8, y, half, 50, "Sentiment", sentiments, colours=SENTIMENT_COLOURS)
    y += 56
    response = k.get("response_ms") or {}
    latency = [(p, response.get(p) or 0) for p in ("p50", "p90")]
    pdf.bars(MARGIN, y, half * 0.6, 50, "Response time (ms)", latency)
    hours = k.get("peak_hours") or {}
    pdf.bars(MARGIN + half * 0.6 + 8, y, PAGE_W - 2 * MARGIN - half * 0.6 - 8, 50,
             "Calls by hour of day (peak hours)", [(f"{h:02d}", hours.get(str(h), 0)) for h in range(24)],
             label_every=3)
    pdf.add_page()
    pdf.kpi_table(16)
    return bytes(pdf.output())
