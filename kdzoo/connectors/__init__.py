"""kdzoo.connectors: learnable modules between student taps and losses."""
