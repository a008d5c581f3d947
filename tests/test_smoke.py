"""A first end-to-end check on both backends: add objects over TAXII and read them back."""

from tests.support import indicator


def test_post_then_get(node):
    cert = node.member("CERT")
    collection = node.collection(read=("CERT",), write=("CERT",))
    status = node.post(cert, collection, [indicator(i) for i in range(3)])
    assert status["success_count"] == 3 and status["failure_count"] == 0
    listing = node.session(cert).get(node.objects_url(collection)).json()
    assert len(listing["objects"]) == 3
