import pytest


@pytest.mark.integration
def test_local_s3_server_round_trip_and_reset(s3_server, s3_client):
    s3_client.create_bucket(Bucket="eolab-test")
    s3_client.put_object(Bucket="eolab-test", Key="a/b.bin", Body=b"\x00\x01" * 1000)
    body = s3_client.get_object(Bucket="eolab-test", Key="a/b.bin")["Body"].read()
    assert body == b"\x00\x01" * 1000
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    s3_server.reset()
    assert s3_client.list_buckets()["Buckets"] == []


def test_server_stops_cleanly():
    from eolab.s3server import LocalS3Server

    server = LocalS3Server().start()
    process = server.process
    server.stop()
    assert process.poll() is not None
