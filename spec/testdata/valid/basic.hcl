sparkenv {
  required_version = ">= 0.1"
}

environment "ml" {
  platform     = "linux-64"
  channels     = ["conda-forge"]
  dependencies = ["python 3.11.*", "numpy >=1.26", "pyspark 3.5.*"]
}

target "conda_pack" "ml" {
  environment = environment.ml
  compression = "zstd"
}

publish "local" "dist" {
  targets = [target.conda_pack.ml]
  path    = "dist"
}
