# The whole environment as a squashfs image, published by its content
# digest, and node init scripts that download it, check its sha256 and
# mount it at /opt/conda on every node, including nodes added later.

variable "bucket" {
  type    = string
  default = "spark-envs"
}

environment "ml" {
  platform     = "linux-64"
  channels     = ["conda-forge"]
  dependencies = ["python 3.11.*", "pandas 2.*", "scikit-learn", "pyarrow"]
  virtual_packages = {
    __glibc = "2.31"
  }
  prefix = "/opt/conda"
}

target "squashfs" "image" {
  environment = environment.ml
  mount_point = "/opt/conda"
  compression = "zstd"
}

publish "s3" "images" {
  targets  = [target.squashfs.image]
  bucket   = var.bucket
  prefix   = "images"
  endpoint = "https://storage.yandexcloud.net"
  region   = "ru-central1"
}

target "bootstrap" "nodes" {
  image     = target.squashfs.image
  via       = publish.s3.images
  platforms = ["yandex", "dataproc", "emr"]
}

publish "s3" "scripts" {
  targets  = [target.bootstrap.nodes]
  bucket   = var.bucket
  prefix   = "init"
  endpoint = "https://storage.yandexcloud.net"
  region   = "ru-central1"
}
