"""The contract between the harness (which writes result files) and the reporter (which reads
them): the model registry, the checks and their order, dtypes and outcomes, failure causes,
evidence kinds, the memory-refusal sentence, the bounds the checks judge by, the result file's
name and schema, and the code hash. Standard library only, so `matrix/` stays free of jax and
torch; both sides import this package, and nothing of it is written twice."""
