package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// podRoot is where the chart mounts everything Embedgate reads.
const podRoot = "/etc/embedgate/"

// extract writes the rendered config.yaml and policy.yaml under out, as the
// pod would see them with out as its root, fills every file the config names
// with a placeholder of the right kind (certificates, keys, a secret, shared
// state's encryption key and password), and
// writes out/env with the variables the AKS workload identity webhook would
// inject. It returns the config file's path.
func extract(data []byte, out string) (string, error) {
	objs, problems := validate(data)
	if len(problems) > 0 {
		return "", fmt.Errorf("the manifests are not valid:\n  %s", strings.Join(problems, "\n  "))
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	var config, policy string
	for _, cm := range find[*corev1.ConfigMap](objs) {
		if c, ok := cm.Data["config.yaml"]; ok {
			config = c
		}
		if p, ok := cm.Data["policy.yaml"]; ok {
			policy = p
		}
	}
	if config == "" {
		return "", errors.New("no ConfigMap carries config.yaml")
	}
	if policy == "" {
		// policy.existingConfigMap: the chart renders none; check the
		// config against an empty (deny-all) policy.
		policy = "callers: []\ntenants: {}\n"
	}
	root := filepath.Join(out, podRoot) + string(filepath.Separator)
	config = strings.ReplaceAll(config, podRoot, root)
	configFile := filepath.Join(root, "config", "config.yaml")
	if err := write(configFile, config); err != nil {
		return "", err
	}
	if err := write(filepath.Join(root, "policy", "policy.yaml"), policy); err != nil {
		return "", err
	}

	var cfg struct {
		TLS struct {
			CertFile     string `json:"cert_file"`
			KeyFile      string `json:"key_file"`
			ClientCAFile string `json:"client_ca_file"`
		} `json:"tls"`
		PowerBI struct {
			ClientSecretFile string `json:"client_secret_file"`
			CertificateFile  string `json:"certificate_file"`
		} `json:"powerbi"`
		SharedState struct {
			PasswordFile      string `json:"password_file"`
			EncryptionKeyFile string `json:"encryption_key_file"`
			TLS               struct {
				CAFile string `json:"ca_file"`
			} `json:"tls"`
		} `json:"shared_state"`
	}
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		return "", fmt.Errorf("config.yaml: %w", err)
	}
	if cfg.TLS.CertFile != "" {
		caPEM, certPEM, keyPEM, err := placeholderServer()
		if err != nil {
			return "", err
		}
		for file, content := range map[string]string{cfg.TLS.CertFile: certPEM, cfg.TLS.KeyFile: keyPEM, cfg.TLS.ClientCAFile: caPEM} {
			if err := write(file, content); err != nil {
				return "", err
			}
		}
	}
	if f := cfg.PowerBI.ClientSecretFile; f != "" {
		if err := write(f, "placeholder-client-secret\n"); err != nil {
			return "", err
		}
	}
	if f := cfg.PowerBI.CertificateFile; f != "" {
		pemBundle, err := placeholderRSA()
		if err != nil {
			return "", err
		}
		if err := write(f, pemBundle); err != nil {
			return "", err
		}
	}
	if err := sharedStatePlaceholders(cfg.SharedState.EncryptionKeyFile, cfg.SharedState.PasswordFile, cfg.SharedState.TLS.CAFile); err != nil {
		return "", err
	}
	token := filepath.Join(out, "var/run/secrets/azure/tokens/azure-identity-token")
	if err := write(token, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJwbGFjZWhvbGRlciJ9.\n"); err != nil {
		return "", err
	}
	env := fmt.Sprintf("AZURE_CLIENT_ID=66666666-7777-4888-8999-000000000000\nAZURE_TENANT_ID=11111111-2222-4333-8444-555555555555\n"+
		"AZURE_FEDERATED_TOKEN_FILE=%s\nAZURE_AUTHORITY_HOST=https://login.microsoftonline.com/\n", token)
	if err := write(filepath.Join(out, "env"), env); err != nil {
		return "", err
	}
	return configFile, nil
}

// sharedStatePlaceholders writes shared state's files that are named: a
// random encryption key (base64, as openssl rand -base64 32 writes it), a
// password and a CA bundle.
func sharedStatePlaceholders(keyFile, passwordFile, caFile string) error {
	if keyFile != "" {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		if err := write(keyFile, base64.StdEncoding.EncodeToString(key)+"\n"); err != nil {
			return err
		}
	}
	if passwordFile != "" {
		if err := write(passwordFile, "placeholder-redis-password\n"); err != nil {
			return err
		}
	}
	if caFile != "" {
		caPEM, _, _, err := placeholderServer()
		if err != nil {
			return err
		}
		return write(caFile, caPEM)
	}
	return nil
}

func write(file, content string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, []byte(content), 0o600)
}

func pemOf(kind string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}

// placeholderServer returns a throwaway CA, and a server certificate and key
// it signed, in PEM.
func placeholderServer() (caPEM, certPEM, keyPEM string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chartcheck placeholder CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "embedgate"}, DNSNames: []string{"embedgate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	return pemOf("CERTIFICATE", caDER), pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", keyDER), nil
}

// placeholderRSA returns a self-signed certificate and its unencrypted RSA
// key in one PEM file, the shape of powerbi.certificate_file.
func placeholderRSA() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "embedgate service principal"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	return pemOf("CERTIFICATE", der) + pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)), nil
}
