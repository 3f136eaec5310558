"""Looking at results: contact sheets and preview movies (:mod:`tcvom.review.preview`)."""
