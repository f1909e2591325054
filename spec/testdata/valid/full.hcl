# VERSION: 0.3.1
# VAR: python=3.12
# VAR: workers=8
# ENV: SPARKENV_VAR_bucket=from-env
# ENV: SPARKENV_VAR_channels=["conda-forge", "bioconda"]
# ENV: HOME=/home/spark
sparkenv {
  required_version = ">= 0.1, < 1.0, != 0.3.0"
}

sparkenv {
  required_version = "~> 0.3"
}

variable "python" {
  type        = string
  default     = "3.11"
  description = "Python version of every environment."
  validation {
    condition     = can(regex("^3\\.[0-9]+$", var.python))
    error_message = "Use a Python 3 version like 3.11."
  }
}

variable "workers" {
  type    = number
  default = 2
}

variable "bucket" {
  type      = string
  default   = "none"
  sensitive = true
}

variable "channels" {
  type    = list(string)
  default = ["conda-forge"]
}

variable "home" {
  default = env("HOME")
}

variable "settings" {
  type = object({
    name  = string
    tags  = optional(list(string), [])
    debug = optional(bool, false)
  })
  default = { name = "ml" }
}

locals {
  base_deps = ["python ${var.python}.*", "pip"]
  deps      = concat(local.base_deps, [for l in split("\n", trimspace(file("data/requirements.txt"))) : trimspace(l)])
  sources   = fileset("data", "**/*.py")
  digest    = filesha256("data/c.txt")
  abs       = abspath("data")
  base      = basename(local.abs)
  parent    = dirname("a/b/c")
  root      = path.root
  pack      = target.conda_pack.ml
  math      = [abs(-2), ceil(1.2), floor(1.8), max(1, 5), min(1, 5), parseint("ff", 16), pow(2, 3), signum(-4)]
  strings   = [chomp("x\n"), format("%s-%d", "a", 1), lower("X"), upper("x"), strrev("ab"), substr("hello", 1, 3), title("ab cd"), trim("xax", "x"), trimprefix("ab", "a"), trimsuffix("ab", "b"), replace("a-b", "-", "_"), replace("a1b2", "/[0-9]/", ""), indent(2, "a\nb")]
  lists     = [length(local.base_deps), length("héllo"), index(["a", "b"], "b"), element(["a", "b"], 3), contains(["a"], "a")]
  sets      = sort(setunion(["b"], ["a"]))
  coll      = { k = keys({ a = 1, b = 2 }), v = values({ a = 1 }), z = zipmap(["a"], [1]), m = merge({ a = 1 }, { b = 2 }), f = flatten([[1], [2, 3]]), r = range(3), rev = reverse([1, 2]), c = compact(["", "a"]), d = distinct([1, 1]), s = slice([1, 2, 3], 1, 2), ch = chunklist([1, 2, 3], 2), co = coalesce("", "x"), l = lookup({ a = "1" }, "b", "none") }
  enc       = [jsonencode({ a = [1, true] }), jsondecode("{\"x\": 1}").x, csvdecode("a,b\n1,2")[0].b, join(",", regexall("[a-z]", "a1b")), regex("^(\\d+)", "42abc")[0]]
  conv      = [tostring(1), tonumber("2"), tobool("true"), tolist(toset(["a"]))[0], tomap({ a = "b" }).a]
  fmtlist   = formatlist("%s!", ["a", "b"])
  settings  = var.settings
  secret    = "s3://${var.bucket}/envs"
  secret2   = [local.secret]
}

environment "ml" {
  platform         = "linux-aarch64"
  channels         = var.channels
  dependencies     = local.deps
  virtual_packages = { __glibc = "2.17", __cuda = "12.2" }
  channel_priority = "flexible"
  prefix           = "/opt/envs/ml"
  pip              = ["requests>=2"]
  pip_index        = "https://pypi.org/simple"
  pip_find_links   = ["data", "https://example.com/wheels"]
}

environment "base" {
  platform = "noarch"
  channels = ["conda-forge"]
}

target "conda_pack" "ml" {
  description = "ML environment for ${var.workers} workers"
  environment = environment.ml
  depends_on  = [environment.base]
}

target "pyfiles" "app" {
  sources    = local.sources
  depends_on = [target.conda_pack.ml]
  entry {
    module = "app.main"
    env    = environment.ml
  }
}

target "squashfs" "ml" {
  from = local.pack
}

publish "s3" "prod" {
  description = "Published to ${var.bucket}"
  targets     = [target.conda_pack.ml, target.pyfiles.app]
  depends_on  = [publish.local.staging]
  bucket      = var.bucket
  prefix      = "envs/${var.python}"
}

publish "local" "staging" {
  targets = [target.squashfs.ml]
  path    = "${path.root}/dist"
}
