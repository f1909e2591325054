# The quickstart: a job's own Python code shipped as a --py-files zip and
# published to a local folder that stands in for object storage.

sparkenv {
  required_version = ">= 0.1"
}

variable "publish_dir" {
  type        = string
  default     = "published"
  description = "Where `publish.local.site` puts the artifacts."
}

target "pyfiles" "job" {
  description = "The job's package for --py-files"
  source      = "src"
  include     = ["textstats/**/*.py"]
  exclude     = ["tests/**"]
}

publish "local" "site" {
  targets = [target.pyfiles.job]
  dir     = var.publish_dir
}
