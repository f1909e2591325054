package sparksubmit

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Artifact kinds.
const (
	CondaPack = "conda_pack"
	VenvPack  = "venv_pack"
	PEX       = "pex"
	PyFiles   = "pyfiles"
)

// Masters (cluster managers).
const (
	YARN          = "yarn"
	Kubernetes    = "k8s"
	Standalone    = "standalone"
	Local         = "local"
	EMRServerless = "emr-serverless"
)

// Deploy modes.
const (
	Client  = "client"
	Cluster = "cluster"
)

// DefaultAlias is the directory an archive is unpacked into.
const DefaultAlias = "environment"

// DefaultInterpreter is the interpreter inside an unpacked archive.
const DefaultInterpreter = "bin/python"

// Artifact is one built file: where it was published and where it is on
// this machine.
type Artifact struct {
	// URLs by scheme ("s3", "s3a", "https", "file"), as a publisher's
	// receipt lists them.
	URLs map[string]string
	// Path is the local file; used when nothing is published, and by local
	// masters.
	Path string
}

// Input is what Args wires.
type Input struct {
	Kind      string // CondaPack, VenvPack, PEX or PyFiles
	Artifacts []Artifact
	// Alias is the unpack directory of an archive (default "environment").
	Alias string
	// Interpreter is the python inside an archive (default "bin/python").
	Interpreter string
	Master      string // YARN, Kubernetes, Standalone, Local, EMRServerless
	DeployMode  string // Client (default; Cluster for EMRServerless) or Cluster
	// PythonVersion is the environment's X.Y: driver and workers must agree
	// on it.
	PythonVersion string
	// LocalPython is the driver's interpreter on the submitting machine in
	// client mode (e.g. the archive unpacked locally); "" leaves it unset.
	LocalPython string
}

// Wiring is what spark-submit needs to use the artifact.
type Wiring struct {
	Master     string `json:"master"`
	DeployMode string `json:"deploy_mode"`
	// Flags are spark-submit options with their values, in order, e.g.
	// ["--archives", "s3a://b/env.tar.gz#environment"].
	Flags []string `json:"flags"`
	// Conf are --conf settings.
	Conf map[string]string `json:"conf"`
	// Env are environment variables for the spark-submit process.
	Env map[string]string `json:"env"`
	// Notes explain what the caller must still do or know.
	Notes []string `json:"notes"`
}

// Args computes the wiring of in.
func Args(in Input) (*Wiring, error) {
	mode := in.DeployMode
	switch in.Master {
	case YARN, Kubernetes, Standalone, Local:
		if mode == "" {
			mode = Client
		}
	case EMRServerless:
		if mode == "" {
			mode = Cluster
		}
		if mode != Cluster {
			return nil, fmt.Errorf("EMR Serverless runs the driver in the cluster: deploy mode %q is not possible", mode)
		}
	default:
		return nil, fmt.Errorf("master %q is not one of yarn, k8s, standalone, local, emr-serverless", in.Master)
	}
	if mode != Client && mode != Cluster {
		return nil, fmt.Errorf("deploy mode %q is not one of client, cluster", mode)
	}
	if mode == Cluster && in.Master == Local {
		return nil, fmt.Errorf("a local master has no cluster deploy mode")
	}
	if mode == Cluster && in.Master == Standalone {
		return nil, fmt.Errorf("standalone clusters cannot run Python applications in cluster deploy mode; use client mode")
	}
	if len(in.Artifacts) == 0 {
		return nil, fmt.Errorf("%s: no artifact to wire", in.Kind)
	}
	w := &Wiring{Master: in.Master, DeployMode: mode, Conf: map[string]string{}, Env: map[string]string{}}
	var uris []string
	for _, a := range in.Artifacts {
		u, note, err := chooseURL(a, in.Master, mode)
		if err != nil {
			return nil, err
		}
		if note != "" {
			w.Notes = append(w.Notes, note)
		}
		uris = append(uris, u)
	}
	switch in.Kind {
	case CondaPack, VenvPack:
		if len(uris) != 1 {
			return nil, fmt.Errorf("%s: want one archive, got %d", in.Kind, len(uris))
		}
		alias := in.Alias
		if alias == "" {
			alias = DefaultAlias
		}
		if strings.ContainsAny(alias, "/#, \t\n") || alias == "." || alias == ".." {
			return nil, fmt.Errorf("alias %q must be a plain directory name", alias)
		}
		interp := in.Interpreter
		if interp == "" {
			interp = DefaultInterpreter
		}
		if path.IsAbs(interp) || path.Clean(interp) != interp || strings.HasPrefix(interp, "../") {
			return nil, fmt.Errorf("interpreter %q must be a path inside the archive", interp)
		}
		w.ship(archivesFlag, uris[0]+"#"+alias)
		w.python("./"+alias+"/"+interp, in)
	case PEX:
		if len(uris) != 1 {
			return nil, fmt.Errorf("pex: want one file, got %d", len(uris))
		}
		name, err := fileName(uris[0])
		if err != nil {
			return nil, err
		}
		w.ship(filesFlag, uris[0])
		if in.LocalPython == "" && filepath.IsAbs(in.Artifacts[0].Path) {
			in.LocalPython = in.Artifacts[0].Path
		}
		w.python("./"+name, in)
		v := in.PythonVersion
		if v == "" {
			v = "the PEX's"
		}
		w.Notes = append(w.Notes, fmt.Sprintf("a PEX holds no interpreter: every node needs python %s on its PATH", v))
	case PyFiles:
		w.ship(pyFilesFlag, strings.Join(uris, ","))
		w.Notes = append(w.Notes, "py-files carry pure Python only: the cluster's own python runs them")
	default:
		return nil, fmt.Errorf("kind %q is not one of conda_pack, venv_pack, pex, pyfiles", in.Kind)
	}
	return w, nil
}

const (
	archivesFlag = "--archives"
	filesFlag    = "--files"
	pyFilesFlag  = "--py-files"
)

// ship adds the artifact: EMR Serverless takes only configuration, every
// other master the spark-submit flag.
func (w *Wiring) ship(flag, value string) {
	if w.Master == EMRServerless {
		w.Conf[confKey(flag, w.Master)] = value
		return
	}
	w.Flags = append(w.Flags, flag, value)
}

// confKey is the configuration spark-submit turns flag into on master.
func confKey(flag, master string) string {
	switch flag {
	case archivesFlag:
		if master == YARN {
			return "spark.yarn.dist.archives"
		}
		return "spark.archives"
	case filesFlag:
		if master == YARN {
			return "spark.yarn.dist.files"
		}
		return "spark.files"
	case pyFilesFlag:
		return "spark.submit.pyFiles"
	}
	return ""
}

// python sets the interpreter of the executors and, as the mode allows,
// of the driver.
func (w *Wiring) python(py string, in Input) {
	if w.Master == Local && in.LocalPython != "" {
		// Python workers of a local master start in the directory of
		// spark-submit, while Spark unpacks archives into its own
		// temporary directory: the relative path would find nothing.
		py = in.LocalPython
	}
	w.Conf["spark.executorEnv.PYSPARK_PYTHON"] = py
	if w.Master == EMRServerless {
		w.Conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = py
		return
	}
	w.Conf["spark.pyspark.python"] = py
	w.Env["PYSPARK_PYTHON"] = py
	if w.DeployMode == Cluster {
		switch w.Master {
		case YARN:
			w.Conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = py
		case Kubernetes:
			w.Conf["spark.kubernetes.driverEnv.PYSPARK_PYTHON"] = py
		}
		return
	}
	if in.LocalPython != "" {
		w.Conf["spark.pyspark.driver.python"] = in.LocalPython
		w.Env["PYSPARK_DRIVER_PYTHON"] = in.LocalPython
		return
	}
	v := in.PythonVersion
	if v == "" {
		v = "of the same X.Y"
	}
	w.Notes = append(w.Notes, fmt.Sprintf("%s mode: the driver runs on this machine and uses %s relative to the directory spark-submit starts in: "+
		"unpack the artifact there, or set spark.pyspark.driver.python to a local python %s", w.DeployMode, py, v))
}

// chooseURL picks the URL of a the master reads best.
func chooseURL(a Artifact, master, mode string) (uri, note string, err error) {
	pick := func(schemes ...string) string {
		for _, s := range schemes {
			if u := a.URLs[s]; u != "" {
				return u
			}
		}
		return ""
	}
	switch master {
	case Local:
		if a.Path != "" {
			p, err := filepath.Abs(a.Path)
			return p, "", err
		}
		if u := pick("file", "https", "s3a"); u != "" {
			return u, "", nil
		}
	case EMRServerless:
		if u := pick("s3"); u != "" {
			return u, "", nil
		}
		return "", "", fmt.Errorf("EMR Serverless reads artifacts from S3: publish %s to S3 first", describe(a))
	default:
		if u := pick("s3a", "https"); u != "" {
			return u, "", nil
		}
		if u := pick("file"); u != "" {
			return u, "file URLs work only when every node sees the same path", nil
		}
		if a.Path != "" {
			p, err := filepath.Abs(a.Path)
			if err != nil {
				return "", "", err
			}
			if master == Kubernetes && mode == Cluster {
				return p, "a local file in Kubernetes cluster mode needs spark.kubernetes.file.upload.path", nil
			}
			return p, "", nil
		}
	}
	return "", "", fmt.Errorf("artifact %s has no URL or local path usable with master %s", describe(a), master)
}

func describe(a Artifact) string {
	if a.Path != "" {
		return a.Path
	}
	keys := make([]string, 0, len(a.URLs))
	for k := range a.URLs {
		keys = append(keys, a.URLs[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// fileName is the name a fetched file gets: the last element of the URL's
// path.
func fileName(uri string) (string, error) {
	p := uri
	if u, err := url.Parse(uri); err == nil && u.Scheme != "" {
		p = u.Path
	}
	name := path.Base(p)
	if name == "" || name == "." || name == "/" {
		return "", fmt.Errorf("%s: no file name in the URL", uri)
	}
	return name, nil
}
