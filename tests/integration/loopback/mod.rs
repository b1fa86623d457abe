//! A loopback HTTP server for the end-to-end tests: an axum app on
//! `127.0.0.1:0`, stopped when the returned sender is dropped (or with the
//! test's runtime).

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Serves `app` on a free loopback port: its base URL and its stop switch.
pub async fn serve(app: axum::Router) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (format!("http://{addr}"), stop)
}
