"""The built-in report sections; importing this package registers each of them (one module per section)."""

from shufflenet.report.sections import (  # noqa: F401  (each module registers its section)
    audit,
    deploy,
    fig1,
    fig2,
    glance,
    guidelines,
    latency,
    machine,
    reuse,
    table5,
    training,
    units,
)
