"""The store: engine and sessions (:mod:`.db`), column types, tables, migrations, canonical
paper identity (:mod:`.identity`, :mod:`.records`), the paper diff (:mod:`.papers`) and run
records (:mod:`.runs`)."""
