// Package sparksubmit turns a built environment artifact into the
// spark-submit wiring that ships it to a cluster: which flag carries the
// artifact (--archives for conda_pack and venv_pack archives, --files for a
// PEX, --py-files for py-files zips), which URL of the published artifact
// the cluster can read, and which interpreter settings the driver and the
// executors need for the cluster manager and deploy mode. Renderers print
// the wiring as spark-submit arguments, spark-defaults.conf lines, JSON or
// an EMR Serverless sparkSubmitParameters string.
//
// # Rules it encodes
//
//   - Archives are unpacked on every executor into <working dir>/<alias>;
//     the interpreter is then ./<alias>/bin/python. As a flag the archive
//     is always --archives; as configuration it is spark.yarn.dist.archives
//     on YARN (what spark-submit maps --archives to there) and
//     spark.archives (Spark 3.1+) elsewhere.
//   - Cluster mode: the driver runs inside the cluster beside the unpacked
//     archive, so it gets the relative interpreter too
//     (spark.yarn.appMasterEnv.PYSPARK_PYTHON on YARN,
//     spark.kubernetes.driverEnv.PYSPARK_PYTHON on Kubernetes) and no
//     driver python is ever set (spark.pyspark.driver.python or
//     PYSPARK_DRIVER_PYTHON would point the in-cluster driver at a path of
//     the submitting machine). Standalone clusters cannot run Python
//     applications in cluster mode; local masters have no cluster mode.
//   - Client mode (and local masters): the driver runs on the submitting
//     machine. spark.pyspark.python applies to it too, so a driver
//     interpreter must exist there: Input.LocalPython, when given, becomes
//     spark.pyspark.driver.python; otherwise the wiring carries a note that
//     the archive must be unpacked as ./<alias> beside spark-submit.
//   - Local masters: Python workers are started in spark-submit's working
//     directory (only Spark Connect sessions get a directory of their own),
//     and Spark unpacks --archives into its temporary files directory, not
//     there. So a local master runs ./<alias>/bin/python from an archive
//     unpacked beside spark-submit, or Input.LocalPython for driver and
//     workers alike.
//   - URLs: Hadoop-based clusters (YARN, standalone, Kubernetes with
//     hadoop-aws) read S3 through s3a://; EMR Serverless reads s3://; a local
//     master reads the local file. https:// works everywhere Hadoop's HTTP
//     file system does; a local path is uploaded by spark-submit itself.
//
// This package must never run spark-submit, read the artifact, or guess a
// URL the caller did not give it.
package sparksubmit
