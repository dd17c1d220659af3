"""``--metrics-port``: the library's OpenTelemetry metrics served for Prometheus (``plumasync[metrics]``)."""

from __future__ import annotations

import typer

__all__ = ["serve_metrics"]


def serve_metrics(port: int) -> None:
    """Install the OpenTelemetry SDK with a Prometheus reader and serve ``/metrics`` on 127.0.0.1:``port``
    from a background thread.  A missing extra or a busy port is a usage error, before any request."""
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import start_http_server
    except ImportError:
        raise typer.BadParameter("serving metrics needs the extra: pip install 'plumasync[metrics]'",
                                 param_hint="--metrics-port") from None
    try:
        start_http_server(port, addr="127.0.0.1")
    except OSError as exc:
        raise typer.BadParameter(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}",
                                 param_hint="--metrics-port") from None
    metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
