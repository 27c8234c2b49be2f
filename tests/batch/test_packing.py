"""A batch packed to disk reads back as the lines it was given, cut where ``max_cost`` cuts."""

from __future__ import annotations

from mike_sdk.batch.packing import PackedBatch


def test_lines_read_back_cut_and_read_again() -> None:
    packed = PackedBatch()
    try:
        for i in range(5):
            packed.add(f"k{i}", b'{"custom_id":"k%d"}\n' % i, 0.5 if i != 3 else None)
        assert len(packed) == 5 and packed.size == sum(len(b'{"custom_id":"kN"}\n')
                                                       for _ in range(5))
        assert packed.data().read().splitlines()[4] == b'{"custom_id":"k4"}'
        packed.cut(2)
        assert packed.keys == ["k0", "k1"] and packed.estimates == [0.5, 0.5]
        assert packed.data().read() == b'{"custom_id":"k0"}\n{"custom_id":"k1"}\n'
        assert packed.data().read() == b'{"custom_id":"k0"}\n{"custom_id":"k1"}\n'  # again
        packed.add("k9", b"x\n", None)  # after a cut, lines go on from the cut
        assert packed.data().read().endswith(b'"k1"}\nx\n') and packed.size == 40
    finally:
        packed.close()
