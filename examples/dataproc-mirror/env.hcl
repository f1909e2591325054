# A partial conda channel with just the locked packages, served from object
# storage, and node init scripts that install the environment from it,
# pinned exactly. The recipe people follow by hand on a temporary cluster
# (build /opt/conda, copy pkgs/ into a channel, conda index, upload, write an
# init script), as a build.

variable "bucket" {
  type        = string
  default     = "spark-envs"
  description = "Bucket the channel and the scripts are published to."
}

environment "ml" {
  platform     = "linux-64"
  channels     = ["conda-forge"]
  dependencies = ["python 3.11.*", "catboost 1.2.*", "lightgbm >=4", "pyarrow"]
  virtual_packages = {
    __glibc = "2.31" # Yandex Data Proc image 2.1 (Ubuntu 20.04)
  }
  prefix = "/opt/conda/envs/ml"
}

target "conda_mirror" "repo" {
  environments = [environment.ml]
  shards       = true
}

publish "s3" "repo" {
  targets  = [target.conda_mirror.repo]
  bucket   = var.bucket
  prefix   = "conda"
  endpoint = "https://storage.yandexcloud.net"
  region   = "ru-central1"
}

target "bootstrap" "nodes" {
  mirror      = target.conda_mirror.repo
  environment = environment.ml
  via         = publish.s3.repo
  installer   = "auto"
  platforms   = ["yandex", "dataproc", "emr"]
}

publish "s3" "scripts" {
  targets  = [target.bootstrap.nodes]
  bucket   = var.bucket
  prefix   = "init"
  endpoint = "https://storage.yandexcloud.net"
  region   = "ru-central1"
}
