"""tinyhil's options (:mod:`.table`: light, declared in every pytest run of an environment
that has tinyhil installed) and the settings they resolve into (:mod:`.resolve`: imported
only by a run that asks for tinyhil), each option's value a typed attribute of
:class:`.option_values.OptionValues`."""
