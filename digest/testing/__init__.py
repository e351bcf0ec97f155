"""Test helpers shipped with the product: a real SMTP server (:mod:`.smtp`), a programmable
HTTP server (:mod:`.http`) and imitations of the Hugging Face and arXiv APIs
(:mod:`.imitations`). Production code never imports them."""
