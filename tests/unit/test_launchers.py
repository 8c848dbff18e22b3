"""The Ray address check: a port nothing listens on is one line; a listening one passes."""

from __future__ import annotations

import socket

import pytest
from helpers_http import closed_port

from videodub.errors import VideodubError
from videodub.launchers import check_ray_address


def test_no_address_or_a_local_ray_is_not_checked():
    check_ray_address(["hydra/launcher=ray"])
    check_ray_address(["+hydra.launcher.ray.init.address=auto"])
    check_ray_address(["hydra.launcher.ray.init.address=null"])


def test_an_address_nothing_answers_is_one_line():
    port = closed_port()
    with pytest.raises(VideodubError, match=rf"the Ray cluster at ray://127\.0\.0\.1:{port} "
                                            r"does not answer \(Connection refused\)"):
        check_ray_address([f"+hydra.launcher.ray.init.address=ray://127.0.0.1:{port}"])


def test_a_listening_address_passes_and_a_bad_port_is_named():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_ray_address([f"+hydra.launcher.ray.init.address=127.0.0.1:{server.getsockname()[1]}"])
    with pytest.raises(VideodubError, match="not host:port"):
        check_ray_address(["+hydra.launcher.ray.init.address=127.0.0.1:http"])
