"""Energy meters and the analysis of a current trace.

Energy per inference = (1/N) ∫ V_dut(t) · V_shunt(t) / R_shunt dt over the window in
which the firmware holds its marker GPIO high around N inferences (docs/energy.md),
or, with the firmware's EEMBC timestamp pin, between the two low pulses that mark the
window's edges. A meter produces a :class:`~.trace.Trace`; :func:`~.analysis.analyse`
turns it into figures. Modules, one concern each:

- :mod:`.kinds`: the names the energy options take (light: the option table reads it);
- :mod:`.trace`: a capture and its files, and :class:`~.trace.EnergyError`;
- :mod:`.analysis`: marker window, energy integral, idle baseline, window check;
- :mod:`.settings`: :class:`~.settings.MeterSettings`, the meter options;
- :mod:`.meter`: :class:`~.meter.Meter`, what every meter does;
- :mod:`.nidaqmx_meter`, :mod:`.joulescope_meter`, :mod:`.replay`, :mod:`.simulated`:
  the meters;
- :mod:`.factory`: :func:`~.factory.make_meter`, the meter ``--energy`` names;
- :mod:`.__main__`: ``python -m tinyhil.plugins.bench.measure.energy TRACE``.

This package imports nothing on purpose: the option table imports :mod:`.kinds` in
every pytest run, and numpy must not come with it.
"""
