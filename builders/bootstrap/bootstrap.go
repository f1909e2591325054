package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/condaenv"
	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
	"github.com/sparkenv/sparkenv/internal/fsutil"
	"github.com/sparkenv/sparkenv/publishers"
)

// Kind is the target kind.
const Kind = "bootstrap"

// Platform names accepted in `platforms`, in the order scripts are listed.
const (
	Yandex   = "yandex"
	Dataproc = "dataproc"
	EMR      = "emr"
)

// Platforms are the known platforms.
var Platforms = []string{Yandex, Dataproc, EMR}

// ScriptName is the file written for each platform.
var ScriptName = map[string]string{
	Yandex:   "yandex-dataproc-init.sh",
	Dataproc: "gcp-dataproc-init.sh",
	EMR:      "emr-bootstrap.sh",
}

// Installers of channel mode.
const (
	InstallerSparkenv = "sparkenv"
	InstallerConda    = "conda"
	InstallerAuto     = "auto"
)

// ReceiptFileName is the file a publish artifact holds its receipt in.
const ReceiptFileName = "receipt.json"

// Config is the body of a bootstrap target block.
type Config struct {
	// Platforms to write scripts for; default all of Platforms.
	Platforms []string `hcl:"platforms,optional"`
	// Image is the address of a squashfs target (image mode).
	Image string `hcl:"image,optional"`
	// Mirror is the address of a conda mirror target and Environment the
	// environment installed from it (channel mode).
	Mirror      string `hcl:"mirror,optional"`
	Environment string `hcl:"environment,optional"`
	// Via is the address of the publish block that put the image or mirror
	// where nodes can reach it; its receipt gives the URLs.
	Via string `hcl:"via,optional"`
	// URLScheme picks which of the published URLs nodes download from:
	// https (default), website, s3 (image mode: the aws cli) or file.
	URLScheme string `hcl:"url_scheme,optional"`
	// Prefix is where channel mode installs; default the environment's.
	Prefix string `hcl:"prefix,optional"`
	// Installer is sparkenv (default), conda or auto (conda when the node
	// has it, sparkenv otherwise).
	Installer string `hcl:"installer,optional"`
	// SparkenvURL is where nodes get the sparkenv binary; default a file
	// named sparkenv published by Via, else <mirror root>/sparkenv.
	SparkenvURL string `hcl:"sparkenv_url,optional"`
	// SparkenvSHA256 is the digest the downloaded binary must have.
	SparkenvSHA256 string `hcl:"sparkenv_sha256,optional"`
}

// Builder writes node bootstrap scripts.
type Builder struct{}

var (
	_ builders.Builder   = (*Builder)(nil)
	_ builders.Validator = (*Builder)(nil)
)

// New returns the bootstrap builder.
func New() *Builder { return &Builder{} }

func (*Builder) Kind() string { return Kind }

// Version changes whenever the scripts for an unchanged configuration do.
func (*Builder) Version() string { return "1" }
func (*Builder) NewConfig() any  { return &Config{} }

// Validate checks the configuration without touching anything.
func (*Builder) Validate(cfg any, baseDir string) error {
	c, ok := cfg.(*Config)
	if !ok {
		return fmt.Errorf("bootstrap: unexpected configuration type %T", cfg)
	}
	_, err := c.normalize()
	return err
}

// settings is a Config with defaults applied.
type settings struct {
	Config
	channel bool
}

func (c *Config) normalize() (*settings, error) {
	s := &settings{Config: *c}
	switch {
	case c.Image != "" && (c.Mirror != "" || c.Environment != ""):
		return nil, fmt.Errorf("set either image (image mode) or mirror and environment (channel mode), not both")
	case c.Image == "" && c.Mirror == "" && c.Environment == "":
		return nil, fmt.Errorf("nothing to bootstrap: set image = target.squashfs.<name>, or mirror = target.<mirror>.<name> and environment = environment.<name>")
	case c.Image == "" && (c.Mirror == "" || c.Environment == ""):
		return nil, fmt.Errorf("channel mode needs both mirror and environment")
	}
	s.channel = c.Image == ""
	if c.Image != "" && !strings.HasPrefix(c.Image, "target.") {
		return nil, fmt.Errorf("image %q must be a target address such as target.squashfs.image", c.Image)
	}
	if c.Mirror != "" && !strings.HasPrefix(c.Mirror, "target.") {
		return nil, fmt.Errorf("mirror %q must be a target address such as target.conda_mirror.repo", c.Mirror)
	}
	if c.Environment != "" && !strings.HasPrefix(c.Environment, "environment.") {
		return nil, fmt.Errorf("environment %q must be an environment address such as environment.ml", c.Environment)
	}
	if c.Via == "" {
		return nil, fmt.Errorf("via is required: name the publish block that made the artifacts reachable, e.g. via = publish.s3.repo")
	}
	if !strings.HasPrefix(c.Via, "publish.") {
		return nil, fmt.Errorf("via %q must be a publish address such as publish.s3.repo", c.Via)
	}
	if len(c.Platforms) == 0 {
		s.Platforms = append([]string(nil), Platforms...)
	} else {
		seen := map[string]bool{}
		s.Platforms = nil
		for _, p := range c.Platforms {
			if ScriptName[p] == "" {
				return nil, fmt.Errorf("platform %q is not one of %s", p, strings.Join(Platforms, ", "))
			}
			if seen[p] {
				return nil, fmt.Errorf("platform %q is listed twice", p)
			}
			seen[p] = true
		}
		for _, p := range Platforms {
			if seen[p] {
				s.Platforms = append(s.Platforms, p)
			}
		}
	}
	if s.URLScheme == "" {
		s.URLScheme = "https"
	}
	switch s.URLScheme {
	case "https", "website", "file":
	case "s3":
		if s.channel {
			return nil, fmt.Errorf("url_scheme \"s3\" works in image mode only: conda and sparkenv fetch packages by http(s) URL; use https or website")
		}
	default:
		return nil, fmt.Errorf("url_scheme %q is not one of https, website, s3, file", s.URLScheme)
	}
	if s.Installer == "" {
		s.Installer = InstallerSparkenv
	}
	switch s.Installer {
	case InstallerSparkenv, InstallerConda, InstallerAuto:
	default:
		return nil, fmt.Errorf("installer %q is not one of sparkenv, conda, auto", s.Installer)
	}
	if !s.channel && (c.Prefix != "" || c.Installer != "" || c.SparkenvURL != "" || c.SparkenvSHA256 != "") {
		return nil, fmt.Errorf("prefix, installer, sparkenv_url and sparkenv_sha256 apply to channel mode only (mirror + environment)")
	}
	if c.Prefix != "" {
		if err := checkPath("prefix", c.Prefix); err != nil {
			return nil, err
		}
	}
	if c.SparkenvSHA256 != "" && !isHex(c.SparkenvSHA256, 64) {
		return nil, fmt.Errorf("sparkenv_sha256 %q is not a hex sha256 digest", c.SparkenvSHA256)
	}
	if c.SparkenvURL != "" {
		if err := checkURL("sparkenv_url", c.SparkenvURL); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkPath accepts absolute paths that a script and an fstab line can carry
// without quoting surprises.
func checkPath(what, p string) error {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("%s %q must be a clean absolute path other than /", what, p)
	}
	if strings.ContainsAny(p, " \t\n\r\\'\"$`#{}") {
		return fmt.Errorf("%s %q must not contain blanks, quotes, backslashes, braces, $, # or backquotes", what, p)
	}
	return nil
}

func checkURL(what, u string) error {
	if strings.ContainsAny(u, " \t\n\r'\"`\\") {
		return fmt.Errorf("%s %q must not contain blanks, quotes or backslashes", what, u)
	}
	for _, p := range []string{"https://", "http://", "s3://", "file://"} {
		if strings.HasPrefix(u, p) {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want an https://, http://, s3:// or file:// URL", what, u)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Build writes the scripts, the pinned environment files in channel mode,
// and README.txt.
func (b *Builder) Build(ctx context.Context, req *builders.Request) (*builders.Result, error) {
	c, ok := req.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("bootstrap: unexpected configuration type %T", req.Config)
	}
	s, err := c.normalize()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	rc, err := readReceipt(req, s.Via)
	if err != nil {
		return nil, err
	}
	var p *plan
	if s.channel {
		p, err = channelPlan(req, s, rc)
	} else {
		p, err = imagePlan(req, s, rc)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Address, err)
	}
	p.Target = req.Address
	for name, data := range p.Extra {
		if err := fsutil.WriteFile(filepath.Join(req.OutDir, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	for _, pl := range s.Platforms {
		text, err := render(pl, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %s script: %w", req.Address, pl, err)
		}
		if err := fsutil.WriteFile(filepath.Join(req.OutDir, ScriptName[pl]), text, 0o755); err != nil {
			return nil, err
		}
	}
	if err := fsutil.WriteFile(filepath.Join(req.OutDir, "README.txt"), readme(s, p), 0o644); err != nil {
		return nil, err
	}
	if req.Log != nil {
		fmt.Fprintf(req.Log, "wrote %s scripts for %s (%s mode)\n", strings.Join(s.Platforms, ", "), p.Subject, p.Mode)
	}
	return &builders.Result{Metadata: map[string]string{
		"mode":      p.Mode,
		"platforms": strings.Join(s.Platforms, ","),
	}}, nil
}

// readReceipt finds the via input and reads its receipt.
func readReceipt(req *builders.Request, via string) (*publishers.Receipt, error) {
	for _, in := range req.Inputs {
		if in.Address != via {
			continue
		}
		f := filepath.Join(in.Dir, ReceiptFileName)
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s: read its receipt (has it been published?): %w", via, err)
		}
		var rc publishers.Receipt
		if err := json.Unmarshal(data, &rc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		return &rc, nil
	}
	return nil, fmt.Errorf("%s is not an input of %s (is it declared?)", via, req.Address)
}

func findInput(req *builders.Request, addr string) (builders.Input, bool) {
	for _, in := range req.Inputs {
		if in.Address == addr {
			return in, true
		}
	}
	return builders.Input{}, false
}

func receiptItem(rc *publishers.Receipt, via, target string) (*publishers.ReceiptItem, error) {
	for i := range rc.Items {
		if rc.Items[i].Target == target {
			return &rc.Items[i], nil
		}
	}
	return nil, fmt.Errorf("%s did not publish %s: add it to the targets of %s", via, target, via)
}

func pickURL(urls map[string]string, scheme, what string) (string, error) {
	if u := urls[scheme]; u != "" {
		if err := checkURL(what, u); err != nil {
			return "", err
		}
		return u, nil
	}
	var have []string
	for k := range urls {
		have = append(have, k)
	}
	sort.Strings(have)
	if len(have) == 0 {
		return "", fmt.Errorf("%s has no published URL", what)
	}
	return "", fmt.Errorf("%s has no %q URL (it has %s): set url_scheme to one of those", what, scheme, strings.Join(have, ", "))
}

// plan is everything a script template needs.
type plan struct {
	Target  string // the bootstrap target's address
	Mode    string // "image" or "channel"
	Subject string // address of what is put on the nodes

	// image mode
	ImageURL   string
	ImageSHA   string
	ImageSize  int64
	ImageFile  string // <sha12>.sqfs
	MountPoint string

	// channel mode
	EnvName        string
	Prefix         string
	Installer      string
	ChannelRoot    string
	Explicit       string // file contents, embedded in the script
	Lock           string
	ExplicitName   string
	LockName       string
	LockSHA        string
	Packages       int
	SparkenvURL    string
	SparkenvSHA256 string

	Extra map[string][]byte // further files written beside the scripts
}

func imagePlan(req *builders.Request, s *settings, rc *publishers.Receipt) (*plan, error) {
	in, ok := findInput(req, s.Image)
	if !ok {
		return nil, fmt.Errorf("%s is not an input of this build (is it declared?)", s.Image)
	}
	main := in.Metadata[publishers.MetaMain]
	if main == "" {
		return nil, fmt.Errorf("%s names no main file: is it a squashfs target?", s.Image)
	}
	f, ok := in.Manifest.Lookup(main)
	if !ok {
		return nil, fmt.Errorf("%s: its main file %s is not in its manifest", s.Image, main)
	}
	mp := in.Metadata["mount_point"]
	if mp == "" {
		return nil, fmt.Errorf("%s has no mount_point: is it a squashfs target?", s.Image)
	}
	if err := checkPath(s.Image+" mount_point", mp); err != nil {
		return nil, err
	}
	item, err := receiptItem(rc, s.Via, s.Image)
	if err != nil {
		return nil, err
	}
	var pub *publishers.PublishedFile
	for i := range item.Files {
		if item.Files[i].Path == main {
			pub = &item.Files[i]
		}
	}
	if pub == nil {
		return nil, fmt.Errorf("%s: the receipt lists no file %s of %s", s.Via, main, s.Image)
	}
	if pub.SHA256 != "" && pub.SHA256 != f.SHA256 {
		return nil, fmt.Errorf("%s published %s of %s with sha256 %s, but the image built is %s: publish again", s.Via, main, s.Image, pub.SHA256, f.SHA256)
	}
	u, err := pickURL(pub.URLs, s.URLScheme, s.Via+" file "+main)
	if err != nil {
		return nil, err
	}
	if !isHex(f.SHA256, 64) {
		return nil, fmt.Errorf("%s: %s has no valid sha256 in its manifest", s.Image, main)
	}
	return &plan{
		Mode: "image", Subject: s.Image,
		ImageURL: u, ImageSHA: f.SHA256, ImageSize: f.Size, ImageFile: f.SHA256[:12] + ".sqfs", MountPoint: mp,
	}, nil
}

func channelPlan(req *builders.Request, s *settings, rc *publishers.Receipt) (*plan, error) {
	res, err := condaenv.Resolved(req, s.Environment)
	if err != nil {
		return nil, err
	}
	item, err := receiptItem(rc, s.Via, s.Mirror)
	if err != nil {
		return nil, err
	}
	root, err := pickURL(item.Root, s.URLScheme, s.Via+" root of "+s.Mirror)
	if err != nil {
		return nil, err
	}
	root = strings.TrimRight(root, "/")
	mirror, _ := findInput(req, s.Mirror)
	env, err := Rewrite(res.Environment, root, mirror)
	if err != nil {
		return nil, fmt.Errorf("%s from %s: %w", s.Environment, s.Mirror, err)
	}
	name := res.Name
	if name == "" {
		name = strings.TrimPrefix(s.Environment, "environment.")
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	lockData, err := lock.Encode(&lock.File{Version: lock.Version, Environments: map[string]*lock.Environment{name: env}})
	if err != nil {
		return nil, err
	}
	explicit := lock.Explicit(env)
	prefix := s.Prefix
	if prefix == "" {
		prefix = res.Prefix
	}
	if prefix == "" {
		prefix = "/opt/conda"
	}
	if err := checkPath("prefix", prefix); err != nil {
		return nil, err
	}
	p := &plan{
		Mode: "channel", Subject: s.Environment,
		EnvName: name, Prefix: prefix, Installer: s.Installer, ChannelRoot: root,
		Explicit: string(explicit), Lock: string(lockData),
		ExplicitName: name + ".explicit.txt", LockName: name + ".lock.json",
		LockSHA: sha(lockData), Packages: len(env.Packages),
		SparkenvURL: s.SparkenvURL, SparkenvSHA256: s.SparkenvSHA256,
		Extra: map[string][]byte{name + ".explicit.txt": explicit, name + ".lock.json": lockData},
	}
	// Even a conda installer gets the binary's URL: SPARKENV_INSTALLER on
	// a node without conda switches to it.
	if p.SparkenvURL == "" {
		p.SparkenvURL, p.SparkenvSHA256 = sparkenvFromReceipt(rc, s.URLScheme, s.SparkenvSHA256)
		if p.SparkenvURL == "" {
			p.SparkenvURL = root + "/sparkenv"
		}
	}
	for _, body := range []string{p.Explicit, p.Lock} {
		for _, l := range strings.Split(body, "\n") {
			if l == heredocEnd {
				return nil, fmt.Errorf("the environment's files contain the line %q that ends the script's embedded copy", heredocEnd)
			}
		}
	}
	return p, nil
}

// sparkenvFromReceipt finds a published file named sparkenv: the binary
// published beside the mirror.
func sparkenvFromReceipt(rc *publishers.Receipt, scheme, want string) (string, string) {
	for _, it := range rc.Items {
		for _, f := range it.Files {
			if path.Base(f.Path) != "sparkenv" || f.URLs[scheme] == "" || checkURL("sparkenv", f.URLs[scheme]) != nil {
				continue
			}
			if want != "" && f.SHA256 != want {
				continue
			}
			return f.URLs[scheme], f.SHA256
		}
	}
	return "", want
}

func checkName(n string) error {
	if n == "" || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" || strings.HasPrefix(n, ".") {
		return fmt.Errorf("environment name %q cannot name a file: use letters, digits, _, - and .", n)
	}
	return nil
}

// Rewrite returns a copy of env whose package URLs point at the mirror
// published at root (<root>/<subdir>/<file name>), its only channel. When
// mirror has a manifest, every package must be in it with the locked
// digest: a script naming a file the mirror lacks would fail on every node.
func Rewrite(env *lock.Environment, root string, mirror builders.Input) (*lock.Environment, error) {
	out := *env
	out.Channels = []string{root}
	out.Packages = make([]repodata.Record, 0, len(env.Packages))
	if len(env.Pip) > 0 {
		return nil, fmt.Errorf("it has %d pip wheels: a conda mirror cannot serve them; use image mode", len(env.Pip))
	}
	for _, r := range env.Packages {
		fn := r.FileName
		if fn == "" {
			fn = path.Base(r.URL)
		}
		subdir := r.Subdir
		if subdir == "" {
			subdir = path.Base(path.Dir(r.URL))
		}
		if !subdirName.MatchString(subdir) || !packageFile.MatchString(fn) {
			return nil, fmt.Errorf("package %s %s: cannot tell its subdir and file name from %q", r.Name, r.Version, r.URL)
		}
		key := subdir + "/" + fn
		if len(mirror.Manifest.Files) > 0 {
			got, ok := "", false
			for _, f := range mirror.Manifest.Files {
				if f.Path == key || strings.HasSuffix(f.Path, "/"+key) {
					got, ok = f.SHA256, true
					break
				}
			}
			if !ok {
				return nil, fmt.Errorf("the mirror holds no %s", key)
			}
			if r.SHA256 != "" && got != r.SHA256 {
				return nil, fmt.Errorf("the mirror's %s has sha256 %s, the lock wants %s", key, got, r.SHA256)
			}
		}
		r.URL = root + "/" + key
		r.Channel = root
		r.FileName = fn
		r.Subdir = subdir
		out.Packages = append(out.Packages, r)
	}
	return &out, nil
}

var (
	subdirName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	packageFile = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+!-]*\.(conda|tar\.bz2)$`)
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
