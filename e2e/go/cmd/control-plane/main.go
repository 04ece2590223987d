// Command control-plane runs a real etcd and kube-apiserver on loopback (through
// controller-runtime's envtest), installs CRDs and namespaces, writes an admin kubeconfig,
// and keeps them running until it gets SIGTERM or SIGINT; then it stops both.
//
// It writes into -run-dir:
//
//	kubeconfig        admin identity (system:masters) for the API server
//	etcd.log          etcd's output
//	kube-apiserver.log
//	control-plane.pids  "<pid> <name>" of etcd and kube-apiserver (children of this process)
//	pki/ca.crt        the CA of kube-apiserver's serving certificate
//	pki/sa.key        the key kube-apiserver signs service-account tokens with (for
//	                  kube-controller-manager)
//	ready             written last, once everything above is in place
//
// -apiserver-arg NAME=VALUE (repeatable) sets kube-apiserver's --NAME, replacing envtest's default
// for it (e.g. service-cluster-ip-range, disable-admission-plugins); given more than once for the
// same NAME, the flag is passed once per value. Without it kube-apiserver runs with envtest's
// defaults, as before.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// apiserverArgs collects -apiserver-arg NAME=VALUE flags, in order, by NAME.
type apiserverArgs struct {
	names  []string
	values map[string][]string
}

func (a *apiserverArgs) String() string {
	var parts []string
	for _, name := range a.names {
		for _, v := range a.values[name] {
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func (a *apiserverArgs) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimPrefix(name, "--")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	if a.values == nil {
		a.values = map[string][]string{}
	}
	if _, seen := a.values[name]; !seen {
		a.names = append(a.names, name)
	}
	a.values[name] = append(a.values[name], value)
	return nil
}

func main() {
	var extra apiserverArgs
	flag.Var(&extra, "apiserver-arg", "NAME=VALUE: pass --NAME=VALUE to kube-apiserver instead of envtest's default for NAME (repeatable)")
	binDir := flag.String("bin-dir", "", "directory holding the etcd and kube-apiserver binaries")
	crdDir := flag.String("crd-dir", "", "directory of CustomResourceDefinition YAML files to install")
	runDir := flag.String("run-dir", "", "directory for the kubeconfig, logs, PIDs and the ready marker")
	namespaces := flag.String("namespaces", "default,ray-system", "comma-separated namespaces to create")
	startTimeout := flag.Duration("start-timeout", 3*time.Minute, "how long etcd and kube-apiserver may take to start")
	flag.Parse()
	if *binDir == "" || *crdDir == "" || *runDir == "" {
		fmt.Fprintln(os.Stderr, "control-plane: -bin-dir, -crd-dir and -run-dir are required")
		os.Exit(2)
	}
	if err := run(*binDir, *crdDir, *runDir, *namespaces, *startTimeout, &extra); err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		os.Exit(1)
	}
}

func run(binDir, crdDir, runDir, namespaces string, startTimeout time.Duration, extra *apiserverArgs) error {
	runDir, err := filepath.Abs(runDir)
	if err != nil {
		return err
	}
	// Every directory envtest makes (etcd data, certificates) goes under the run directory, so
	// that cleaning it removes them even if this process was killed.
	tmp := filepath.Join(runDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	os.Setenv("TMPDIR", tmp)

	etcdLog, err := os.Create(filepath.Join(runDir, "etcd.log"))
	if err != nil {
		return err
	}
	defer etcdLog.Close()
	apiLog, err := os.Create(filepath.Join(runDir, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	defer apiLog.Close()

	env := &envtest.Environment{
		BinaryAssetsDirectory:    binDir,
		CRDDirectoryPaths:        []string{crdDir},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  time.Minute,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog}
	api := env.ControlPlane.GetAPIServer()
	api.Out, api.Err = apiLog, apiLog
	for _, name := range extra.names {
		api.Configure().Set(name, extra.values[name]...)
	}

	// Stop on a signal even while starting.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	started := time.Now()
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return fmt.Errorf("starting the control plane: %w", err)
	}
	stop := func() error {
		fmt.Println("control-plane: stopping etcd and kube-apiserver")
		return env.Stop()
	}
	if err := writePIDs(filepath.Join(runDir, "control-plane.pids")); err != nil {
		_ = stop()
		return err
	}
	if err := writePKI(filepath.Join(runDir, "pki"), api); err != nil {
		_ = stop()
		return err
	}
	if err := prepare(cfg, env, namespaces); err != nil {
		_ = stop()
		return err
	}
	kubeconfig := filepath.Join(runDir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		_ = stop()
		return err
	}
	if err := os.WriteFile(filepath.Join(runDir, "ready"), []byte(cfg.Host+"\n"), 0o644); err != nil {
		_ = stop()
		return err
	}
	fmt.Printf("control-plane: ready in %s at %s (kubeconfig %s)\n",
		time.Since(started).Round(time.Millisecond), cfg.Host, kubeconfig)

	sig := <-signals
	fmt.Printf("control-plane: got %s\n", sig)
	return stop()
}

// prepare waits until every installed CRD is Established and creates the namespaces.
func prepare(cfg *rest.Config, env *envtest.Environment, namespaces string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, crd := range env.CRDs {
		name := crd.GetName()
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // keep polling until the deadline
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not Established: %w", name, err)
		}
		fmt.Printf("control-plane: CRD %s Established\n", name)
	}

	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, ns := range strings.Split(namespaces, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			continue
		}
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		_, err := core.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	return nil
}

// writePKI copies what other components of the control plane need from the API server's
// certificate directory.
func writePKI(dir string, api *envtest.APIServer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if len(api.SecureServing.CA) == 0 {
		return fmt.Errorf("kube-apiserver has no serving CA")
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), api.SecureServing.CA, 0o600); err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(api.CertDir, "sa-signer.key"))
	if err != nil {
		return fmt.Errorf("reading the service-account signing key: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "sa.key"), key, 0o600)
}

// writePIDs records this process's children (etcd and kube-apiserver) so that `down` can stop
// them by PID should this process die without stopping them.
func writePIDs(path string) error {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var lines []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may contain spaces, so split after the last ')'.
		s := string(stat)
		lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if lp < 0 || rp < lp {
			continue
		}
		fields := strings.Fields(s[rp+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == self {
			lines = append(lines, fmt.Sprintf("%d %s", pid, s[lp+1:rp]))
		}
	}
	if len(lines) == 0 {
		return fmt.Errorf("found no etcd or kube-apiserver child process")
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
