"""DataFrame export for VoiceTrends reports, behind optional extras.

``pip install "plumasync[pandas]"`` or ``"plumasync[polars]"``, then ``to_pandas(report)`` or
``to_polars(report)``.  Without the library installed they raise an ImportError that names the extra to
install.  The models know nothing of this module (it depends on them, never the other way).
"""

from __future__ import annotations

from typing import Any

from .models.voicetrends import GeographicReport, PathReport, TrendReport

__all__ = ["rows", "to_pandas", "to_polars"]


def rows(report: TrendReport | GeographicReport | PathReport) -> list[dict[str, Any]]:
    """A report as a list of flat records: one per period (trends), region (geographic) or node (path)."""
    if isinstance(report, GeographicReport):
        return [{"area": area, "region": region, "calls": calls}
                for area, regions in (("US", report.us), ("NON_US", report.non_us))
                for region, calls in regions.items()]
    if isinstance(report, PathReport):
        return [{"application": url, **node.to_dict()} for url, node in report.nodes()]
    names = list(report.series)
    return [{"period": ts, **{name: report.series[name].get(ts) for name in names}} for ts in report.timestamps()]


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed: pip install \"plumasync[{extra}]\"") from exc


def to_pandas(report: TrendReport | GeographicReport | PathReport) -> Any:
    """A pandas DataFrame (trends: indexed by period start, one column per series)."""
    pd = _need("pandas", "pandas")
    frame = pd.DataFrame.from_records(rows(report))
    if "period" in frame.columns:
        frame = frame.set_index("period")
    return frame


def to_polars(report: TrendReport | GeographicReport | PathReport) -> Any:
    """A polars DataFrame (trends: a ``period`` column plus one column per series)."""
    pl = _need("polars", "polars")
    return pl.DataFrame(rows(report))
