"""tinyhil's options (:mod:`.table`: light, declared in every pytest run of an environment
that has tinyhil installed) and the settings they resolve into (:mod:`.resolve`: imported
only by a run that asks for tinyhil)."""
