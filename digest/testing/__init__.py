"""Test helpers shipped with the product: a real SMTP server (:mod:`.smtp`), the same with a
relay's faults (:mod:`.faults`), relays that are down or hostile as raw sockets
(:mod:`.relays`), a programmable HTTP server (:mod:`.http`) and imitations of the Hugging
Face and arXiv APIs (:mod:`.imitations`). Production code never imports them."""
