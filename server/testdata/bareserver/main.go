// Command bareserver is the floor of Embedgate's throughput benchmark
// (server/throughput_bench_test.go): a bare grpc-go server with the same mTLS
// as Embedgate (the same certificate, client CAs and client-certificate
// requirement), answering GenerateEmbedToken with a fixed response of about
// 1.5 KB, the size of a real one. No interceptor, no policy, no logging.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

type bare struct {
	embedgatev1.UnimplementedEmbedTokenServiceServer
	resp *embedgatev1.GenerateEmbedTokenResponse
}

func (b *bare) GenerateEmbedToken(context.Context, *embedgatev1.GenerateEmbedTokenRequest) (*embedgatev1.GenerateEmbedTokenResponse, error) {
	return b.resp, nil
}

func main() {
	cert := flag.String("cert", "", "server certificate")
	key := flag.String("key", "", "server key")
	ca := flag.String("ca", "", "client CA bundle")
	addrFile := flag.String("addr-file", "", "where to write the address listened on")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	pem, err := os.ReadFile(*ca)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"},
	})))
	now := timestamppb.Now()
	embedgatev1.RegisterEmbedTokenServiceServer(gs, &bare{resp: &embedgatev1.GenerateEmbedTokenResponse{
		Token:       "H4sI" + strings.Repeat("x", 1100), // an embed token is about 1.1 KB of base64
		TokenId:     "97e82adc-2606-423f-a630-75c97f52a4c5",
		ExpireTime:  now,
		RefreshTime: now,
		Reports: []*embedgatev1.EmbedReport{{
			Id: "a1000000-0000-4000-8000-000000000001", Name: "Sales", DatasetId: "d1000000-0000-4000-8000-000000000001",
			WorkspaceId: "a0000000-0000-4000-8000-000000000001",
			EmbedUrl:    "https://app.powerbi.com/reportEmbed?reportId=a1000000-0000-4000-8000-000000000001&groupId=a0000000-0000-4000-8000-000000000001&w=2&config=" + strings.Repeat("c", 120),
		}},
	}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*addrFile+".tmp", []byte(lis.Addr().String()), 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(*addrFile+".tmp", *addrFile); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "bareserver on", lis.Addr())
	log.Fatal(gs.Serve(lis))
}
