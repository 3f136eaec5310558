"""Weight files: reading and checking checkpoints (:mod:`tcvom.weights.checkpoints`) and
finding and registering the files users download (:mod:`tcvom.weights.registry`)."""
