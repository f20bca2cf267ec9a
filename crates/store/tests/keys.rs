//! API keys and the count of an owner's jobs in flight, on every configured backend.

use icp_store::test_support::{TestDatabase, new_job};
use time::OffsetDateTime;

#[tokio::test]
async fn keys_are_created_listed_and_revoked_once() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        assert_eq!(store.count_active_api_keys().await.unwrap(), 0);
        let a = store
            .create_api_key("k1", Some("dashboard"), "$argon2id$hash-a")
            .await
            .unwrap();
        assert_eq!(a.id, "k1");
        assert_eq!(a.name.as_deref(), Some("dashboard"));
        assert_eq!(a.revoked_at, None);
        store
            .create_api_key("k2", None, "$argon2id$hash-b")
            .await
            .unwrap();
        // Ids are unique.
        assert!(store.create_api_key("k1", None, "x").await.is_err());
        assert_eq!(store.count_active_api_keys().await.unwrap(), 2);

        let listed: Vec<_> = store
            .list_api_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(listed, ["k1", "k2"]);
        assert_eq!(
            store.api_key("k2").await.unwrap().unwrap().secret_hash,
            "$argon2id$hash-b"
        );
        assert_eq!(store.api_key("nope").await.unwrap(), None);

        let now = OffsetDateTime::now_utc();
        assert!(store.revoke_api_key("k1", now).await.unwrap());
        assert!(
            !store.revoke_api_key("k1", now).await.unwrap(),
            "revoked twice"
        );
        assert!(!store.revoke_api_key("nope", now).await.unwrap());
        assert!(
            store
                .api_key("k1")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        assert_eq!(store.count_active_api_keys().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn jobs_in_flight_are_counted_per_owner() {
    for db in TestDatabase::all().await {
        let store = db.store().await;
        for (owner, hash) in [
            (Some("a"), "1"),
            (Some("a"), "2"),
            (Some("b"), "3"),
            (None, "4"),
        ] {
            store.create_job(new_job(owner, None, hash)).await.unwrap();
        }
        assert_eq!(store.count_jobs_in_flight(Some("a")).await.unwrap(), 2);
        assert_eq!(store.count_jobs_in_flight(Some("b")).await.unwrap(), 1);
        assert_eq!(store.count_jobs_in_flight(None).await.unwrap(), 1);
        assert_eq!(store.count_jobs_in_flight(Some("c")).await.unwrap(), 0);
        // A deleted job is not in flight.
        let job = store.list_jobs(icp_store::ListJobs {
            owner: Some("b".into()),
            status: None,
            limit: 1,
            before: None,
        });
        let id = job.await.unwrap()[0].id;
        assert!(store.delete_job(id, Some("b")).await.unwrap());
        assert_eq!(store.count_jobs_in_flight(Some("b")).await.unwrap(), 0);
    }
}
