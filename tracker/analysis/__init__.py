"""The numbers behind every screen and every export: one API, tidy DataFrames.

Every function takes an SQLAlchemy engine (tracker.store.get_engine()) and reads the database through a per-data-
version in-memory Store, so the first call after a refresh takes a few seconds and later calls are fast. Methods and
caveats in plain English: docs/methods.md. Association is not causation: show CAVEAT wherever dependence results
appear.

    data_version(engine)                      token that changes when a refresh lands (cache key)
    indicator_catalog(engine)                 indicators, departments and what data exist
    area_info(engine, code)                   one area: parents, ICB shares, population
    latest_observations(engine, codes, ...)   values with England comparison, trend, red-red, ICB value
    place_profile(engine, code, benchmark)    every indicator for a place against England, its region or ICB
    time_series(engine, indicator, code)      all periods, with England
    icb_figures(engine, indicator, icb)       ICB figures (recomputed from counts or approximate)
    icb_drilldown(engine, icb_code)           an ICB's local authorities with their shares
    lsoa_summary(engine, ...)                 IMD measures built from LSOAs for LAs or ICBs
    associations(engine, outcome, sex)        Spearman's rho of an outcome with each determinant
    department_summary(engine, outcome, sex)  per department, with a bootstrap interval
    place_departments(engine, code, outcome)  the departments a place's health depends on, with evidence
    scatter_data(engine, indicator, outcome)  the points behind one association
    warm(engine)                              after a refresh: precompute and save what first views need

Peers and inequality (docs/methods.md, sections 9 and 10):
    similar_areas(engine, code, kind)         ONS's 20 similar areas of a local authority, in ONS's order
    peer_icbs(engine, icb_code, k)            the tracker's own peer ICBs (nearest on standardised characteristics)
    icb_characteristics(engine)               the inputs peer ICBs are chosen on
    with_peers(engine, rows, kind)            rows + peer value and the comparison with it (same rules as England)
    peer_benchmark(engine, codes, ...)        latest_observations with the comparison with similar areas
    place_peer_profile(engine, code, kind)    place_profile with the comparison with similar areas
    place_departments_against_peers(...)      the department ranking with the gap measured from similar areas
    core20(engine, codes)                     share of residents in England's most deprived 20% of LSOAs
    lsoa_deprivation / quintile_breakdown     a place's LSOAs by national IMD 2025 quintile
    inequality_gaps(engine, code)             LSOA-level determinants by quintile, most vs least deprived fifth
    lsoa_boundaries(engine, code)             GeoJSON of a place's LSOAs (only its own are read)
"""

from tracker.analysis.data import ENGLAND, POPULATION_NOTE, data_version
from tracker.analysis.dependence import (
    CAVEAT,
    PlaceDepartments,
    all_place_departments,
    associations,
    department_places,
    department_summary,
    is_worse,
    place_departments,
    scatter_data,
)
from tracker.analysis.icb import icb_drilldown, icb_figures, lsoa_summary
from tracker.analysis.inequality import (
    core20,
    inequality_gaps,
    lsoa_boundaries,
    lsoa_deprivation,
    quintile_breakdown,
)
from tracker.analysis.peers import (
    PEER_K,
    SIMILARITY_KINDS,
    icb_characteristics,
    peer_benchmark,
    peer_icbs,
    place_departments_against_peers,
    place_peer_profile,
    similar_areas,
    with_peers,
)
from tracker.analysis.place import (
    area_info,
    indicator_catalog,
    latest_observations,
    place_profile,
    time_series,
)
from tracker.analysis.stats import (
    byar_ci,
    compare,
    exact_poisson_ci,
    quintile_labels,
    rate_ci,
    spearman_ci,
    wilson_ci,
)
from tracker.analysis.trends import recent_trends
from tracker.analysis.warm import warm

__all__ = [
    "CAVEAT", "ENGLAND", "POPULATION_NOTE", "PlaceDepartments", "all_place_departments",
    "area_info", "associations", "byar_ci", "compare", "data_version", "department_places", "department_summary", "exact_poisson_ci",
    "icb_drilldown", "icb_figures", "indicator_catalog", "is_worse", "latest_observations", "lsoa_summary", "place_departments",
    "place_profile", "quintile_labels", "rate_ci", "recent_trends", "scatter_data", "spearman_ci", "time_series",
    "warm", "wilson_ci",
    # peers and inequality
    "PEER_K", "SIMILARITY_KINDS", "core20", "icb_characteristics", "inequality_gaps", "lsoa_boundaries",
    "lsoa_deprivation", "peer_benchmark", "peer_icbs", "place_departments_against_peers", "place_peer_profile", "quintile_breakdown",
    "similar_areas", "with_peers",
]
