// A cert-manager controller for the e2e tests, built by scripts/toolchain.sh (step certmanager).
//
// cert-manager's own main (cmd/controller) is a nested module, github.com/cert-manager/cert-manager/
// controller-binary, that is never tagged, so the Go module proxy serves no version of it. The
// controllers themselves live in the served root module (pkg/controller/...) and register with
// pkg/controller.Register from init(); this program links the ones the tests need, builds one
// ContextFactory the way cmd/controller does, starts the informers and runs the controllers until
// SIGINT/SIGTERM. No leader election (one process), no webhook (the API server validates the CRDs'
// schemas; the webhook's extra checks are not needed by tests that write valid objects).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// The control loops: Certificate → CertificateRequest → signed Secret, issuer readiness,
	// the approver (a request must be approved before a signer acts), and the Ingress/Gateway
	// shims that turn annotated Ingresses and Gateways into Certificates.
	gatewayshim "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The issuer kinds the tests use: SelfSigned and CA.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	namespace := flag.String("namespace", "", "watch only this namespace (default: all)")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager",
		"namespace of the Secrets that ClusterIssuers refer to (a CA issuer's key pair)")
	gatewayShim := flag.Bool("enable-gateway-api", false,
		"run the gateway-shim (Certificates for annotated Gateways' listeners); needs the Gateway API CRDs")
	workers := flag.Int("workers", 2, "workers per control loop")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "cert-manager-controller")
	log := logf.FromContext(ctx)

	opts := controllerpkg.ContextOptions{
		Kubeconfig:         *kubeconfig,
		Namespace:          *namespace,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace: *clusterResourceNamespace,
		},
		IngressShimOptions: controllerpkg.IngressShimOptions{
			DefaultAutoCertificateAnnotations: []string{"kubernetes.io/tls-acme"},
			GatewayAPIExtraProtocols:          sets.New[string](),
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			// cert-manager's defaults (1h doubling up to 32h): a failed request is not retried
			// within a test's lifetime, as in a real cluster.
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
		ConfigOptions:    controllerpkg.ConfigOptions{EnableGatewayAPI: *gatewayShim},
	}
	factory, err := controllerpkg.NewContextFactory(ctx, opts)
	if err != nil {
		fail(err)
	}
	base, err := factory.Build()
	if err != nil {
		fail(err)
	}

	var names []string
	for name := range controllerpkg.Known() {
		if name == gatewayshim.ControllerName && !*gatewayShim {
			continue
		}
		if name == clusterissuers.ControllerName && *namespace != "" {
			continue // as cmd/controller: a namespaced controller does not own cluster objects
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var loops []controllerpkg.Interface
	for _, name := range names {
		loop, err := controllerpkg.Known()[name](factory)
		if err != nil {
			fail(fmt.Errorf("controller %s: %w", name, err))
		}
		loops = append(loops, loop)
	}
	log.Info("starting control loops", "controllers", strings.Join(names, ","))

	// The controllers registered their informers while being constructed; start them now.
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	if *gatewayShim {
		base.GWShared.Start(ctx.Done())
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(loops))
	for i, loop := range loops {
		wg.Add(1)
		go func(name string, loop controllerpkg.Interface) {
			defer wg.Done()
			if err := loop.Run(*workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", name, err)
				stop()
			}
		}(names[i], loop)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail(err)
	}
	log.Info("control loops exited")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
	os.Exit(1)
}
