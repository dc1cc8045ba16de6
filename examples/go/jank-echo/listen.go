// listen.go: serve on a TCP address, for a host on another machine that attaches by address.
//
// On Linux go-plugin's plugin.Serve always listens on a unix socket in the temp directory: fine
// for a host that starts the plugin, unreachable from another machine. With JANK_LISTEN=host:port
// this plugin serves go-plugin's own gRPC server (health, controller, broker, PluginService) on
// that TCP address instead and prints the handshake line plugin.Serve prints:
//
//	1|1|tcp|10.0.0.5:7001|grpc|<server certificate, base64 DER>
//
// TLS is go-plugin's AutoMTLS: PLUGIN_CLIENT_CERT (PEM) is the one client certificate accepted,
// and the server's certificate goes in the handshake line. The server certificate comes from
// JANK_TLS_CERT and JANK_TLS_KEY (PEM files) when they are set — a stable identity, so a restarted
// plugin is trusted again without a new handshake line — else it is a fresh one, as go-plugin's.
// Without PLUGIN_CLIENT_CERT the plugin serves plaintext (a host accepts that on loopback only).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
)

func serveTCP(address string) error {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		return errors.New("This binary is a plugin. These are not meant to be executed directly.")
	}
	tlsConfig, serverCert, err := serverTLS()
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	server := &plugin.GRPCServer{
		Plugins: map[string]plugin.Plugin{"handler": handlerPlugin{}},
		Server:  plugin.DefaultGRPCServer,
		TLS:     tlsConfig,
		DoneCh:  make(chan struct{}),
	}
	if err := server.Init(); err != nil {
		return err
	}
	fmt.Printf("%d|%d|tcp|%s|grpc|%s\n", plugin.CoreProtocolVersion, Handshake.ProtocolVersion, listener.Addr(), serverCert)
	os.Stdout.Sync()
	logger.Info("serving on tcp", "address", listener.Addr().String(), "tls", tlsConfig != nil)
	go server.Serve(listener)
	<-server.DoneCh
	return nil
}

// serverTLS: the server side of go-plugin's AutoMTLS (nil without PLUGIN_CLIENT_CERT).
func serverTLS() (*tls.Config, string, error) {
	clientCert := os.Getenv("PLUGIN_CLIENT_CERT")
	if clientCert == "" {
		return nil, "", nil
	}
	clients := x509.NewCertPool()
	if !clients.AppendCertsFromPEM([]byte(clientCert)) {
		return nil, "", errors.New("PLUGIN_CLIENT_CERT is not a PEM certificate")
	}
	var cert tls.Certificate
	var err error
	if certFile, keyFile := os.Getenv("JANK_TLS_CERT"), os.Getenv("JANK_TLS_KEY"); certFile != "" && keyFile != "" {
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	} else {
		cert, err = freshCertificate()
	}
	if err != nil {
		return nil, "", err
	}
	config := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		MinVersion:   tls.VersionTLS12,
	}
	return config, base64.RawStdEncoding.EncodeToString(cert.Certificate[0]), nil
}

// freshCertificate: a self-signed ECDSA P-521 certificate for "localhost", as go-plugin makes.
func freshCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"HashiCorp"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SerialNumber:          serial,
		NotBefore:             time.Now().Add(-30 * time.Second),
		NotAfter:              time.Now().Add(262980 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
