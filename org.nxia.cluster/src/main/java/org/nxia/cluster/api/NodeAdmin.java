package org.nxia.cluster.api;

import java.util.List;

import org.osgi.annotation.versioning.ProviderType;

/**
 * What another node may do with this node's VMs. Each node registers one, with the property
 * {@value #NODE} naming it; a remote node's arrives through Remote Service Admin with
 * {@code service.imported} set. A call on an imported one fails with an unchecked exception
 * (Aries RSA's {@code ServiceException}) when the node is gone or does not answer within the
 * endpoint's timeout.
 */
@ProviderType
public interface NodeAdmin {

    /** The service property that names the node. */
    String NODE = "nxia.node";

    /** The node: its name, backend and how many VMs it holds. */
    NodeStatus status();

    /** Its VMs. */
    List<VmSummary> vms();

    /**
     * Creates a micro-VM from a guest of the node's guest kit (not started).
     *
     * @throws IllegalArgumentException if the request names no guest the node has, saying why
     */
    VmSummary create(GuestRequest request);

    /** Starts a created VM. @throws IllegalArgumentException if the node has no such VM */
    VmSummary start(String vmId);

    /** One VM. @throws IllegalArgumentException if the node has no such VM */
    VmSummary info(String vmId);

    /**
     * What a VM's guest has written to its console, the last {@code maxChars} characters of it.
     *
     * @throws IllegalArgumentException if the node has no such VM
     */
    String console(String vmId, int maxChars);

    /** Stops a VM if needed and releases it. @return whether it existed */
    boolean destroy(String vmId);

    /**
     * Moves a VM of this node that another node made here to the node {@code target}: pre-copy where
     * the VM runs and can be read live (its RAM sent through the target's {@link #openRam} while it
     * runs, then paused and only the pages written since sent, with its state), stop-and-copy
     * otherwise (paused here, sent as a snapshot file through the target's {@link #openTransfer});
     * started there, and destroyed here only once the target has started it. Any failure before that
     * resumes it here.
     *
     * @throws IllegalArgumentException if this node has no such VM made by another node, or knows no node {@code target}
     * @throws IllegalStateException if the move failed (the VM goes on here), saying why
     */
    Moved migrate(String vmId, String target);

    /** The largest piece {@link #receive} takes. */
    int MAX_PIECE = 4 << 20;

    /**
     * Opens an incoming VM: a snapshot file of {@code length} bytes (as {@code vm:snapshot} writes
     * it) that {@link #receive} fills in order and {@link #restore} starts. The node holds few
     * at once and drops one that stays idle.
     *
     * @return the transfer's id
     * @throws IllegalArgumentException if {@code length} is not a size the node takes
     * @throws IllegalStateException if the node holds as many transfers as it takes
     */
    String openTransfer(long length);

    /**
     * The next {@code piece} of a transfer, at {@code offset} (each piece follows the last).
     *
     * @throws IllegalArgumentException if the transfer is unknown, or the piece is out of order, too long, or past its length
     */
    void receive(String transfer, long offset, byte[] piece);

    /**
     * Restores the complete transfer into a new VM of this node and starts it: it goes on where it
     * was saved. The snapshot file is checked whole first, as {@code vm:restore} checks a file;
     * the transfer is gone afterwards, restored or not.
     *
     * @throws IllegalArgumentException if the transfer is unknown or incomplete, or its file is refused, saying why
     */
    VmSummary restore(String transfer);

    /**
     * Opens an incoming VM's RAM for a pre-copy move: {@code ramBytes} of guest RAM, zero until
     * {@link #receivePages} writes pages of it, in any order and as often as they change; then
     * {@link #restore(String, String)} starts the VM over it. Counted, bounded and dropped when idle
     * as the transfers of {@link #openTransfer} are.
     *
     * @return the incoming RAM's id
     * @throws IllegalArgumentException if {@code ramBytes} is not a RAM size the node takes
     * @throws IllegalStateException if the node holds as many transfers as it takes
     * @since 1.1
     */
    String openRam(long ramBytes);

    /**
     * Pages of an incoming RAM: page {@code i} of {@code pages} (4 KiB each) goes to guest-physical
     * {@code addresses[i]}, replacing what an earlier call sent there.
     *
     * @throws IllegalArgumentException if the RAM is unknown, or an address is not a page of it, or
     *         {@code pages} is not one page per address, or more than {@link #MAX_PIECE} bytes
     * @since 1.1
     */
    void receivePages(String ram, long[] addresses, byte[] pages);

    /**
     * As {@link #restore(String)}, for a snapshot file that holds no RAM: the VM's RAM is the incoming
     * RAM {@code ram}, mapped copy-on-write, not copied. Both are gone afterwards, restored or not.
     *
     * @throws IllegalArgumentException if either is unknown, the file is incomplete or refused, it holds RAM of its own,
     *         or its VM's memory is not the incoming RAM's size
     * @since 1.1
     */
    VmSummary restore(String transfer, String ram);

    /**
     * Drops an incoming VM's file or RAM that will not be restored (the source's move failed), with
     * what it held, at once rather than when it sits idle. An id the node does not have is ignored.
     *
     * @since 1.1
     */
    void discard(String transfer);
}
