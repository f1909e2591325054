# The quickstart: one conda environment shipped two ways, and a job's own
# code as a --py-files zip, all published to a local folder that stands in
# for object storage. `make demo` builds it offline: the channel below is
# generated on this machine (see examples/quickstart/README.md).

sparkenv {
  required_version = ">= 0.1"
}

variable "publish_dir" {
  type        = string
  default     = "published"
  description = "Where publish.local.site puts the artifacts."
}

locals {
  mount_point = "/opt/conda"
}

environment "etl" {
  platform     = "linux-64"
  channels     = ["./channel"]
  dependencies = ["python 3.11.*", "wordcount >=2", "textnorm"]
  virtual_packages = {
    __glibc = "2.31"
  }
  prefix = local.mount_point
}

# The whole environment as an image mounted at /opt/conda on every node.
target "squashfs" "image" {
  environment = environment.etl
  mount_point = local.mount_point
}

# The same environment as a relocatable archive for spark-submit --archives.
target "conda_pack" "etl" {
  environment = environment.etl
}

# The job's package for --py-files.
target "pyfiles" "job" {
  description = "The job's package for --py-files"
  source      = "src"
  include     = ["textstats/**/*.py"]
  exclude     = ["tests/**"]
}

publish "local" "site" {
  targets = [target.pyfiles.job, target.squashfs.image, target.conda_pack.etl]
  dir     = var.publish_dir
}
