"""Every source the tracker refreshes, in refresh order. Add a new source here (see the README's
"Adding a source")."""

from __future__ import annotations

from pipelines.base import Source


def all_sources() -> dict[str, Source]:
    from pipelines import (  # noqa: F401  (imported here so a broken source names itself on use)
        dfe,
        dwp,
        desnz,
        fingertips,
        mhclg,
        nomis,
        ons_crime,
        ons_els,
        ons_health_index,
    )

    sources = [
        fingertips.FingertipsSource(),
        ons_els.ElsSource(),
        ons_health_index.HealthIndexSource(),
        mhclg.DeprivationSource(),
        mhclg.HomelessnessSource(),
        dfe.DfeSource(),
        nomis.NomisSource(),
        desnz.FuelPovertySource(),
        dwp.ChildrenLowIncomeSource(),
        ons_crime.CrimeSeveritySource(),
    ]
    return {s.name: s for s in sources}
