//! UDP over loopback: send/recv, peek, connect, and an address in use.

use std::io;

use pinwheel_tests::rt;

#[test]
fn net_udp_send_recv_connect_peek() {
    use pinwheel::net::UdpSocket;
    let rt = rt(2);
    rt.block_on(rt.spawn(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        a.send_to(b"one", ba).await.unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = b.peek_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], aa));
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], aa));
        a.connect(ba).await.unwrap();
        b.connect(aa).await.unwrap();
        for i in 0..50u8 {
            a.send(&[i]).await.unwrap();
            assert_eq!(b.recv(&mut buf).await.unwrap(), 1);
            assert_eq!(buf[0], i);
        }
        let err = UdpSocket::bind(aa).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&aa.to_string()), "{err}");
    }))
    .unwrap();
}
