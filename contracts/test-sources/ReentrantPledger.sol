// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

interface IEthPledgeEscrow {
    function pledge() external payable;
    function withdraw() external;
    function finalize() external;
    function reclaim() external;
}

/// @title ReentrantPledger: a contract pledger (or organizer) that fights back (tests only)
/// @notice When ETH arrives it does what `onReceive` says: Accept; Reject (revert, so the payout
/// fails); or re-enter the escrow with withdraw, reclaim, finalize or pledge, recording whether
/// that inner call succeeded and what it returned, then accepting the ETH either way.
contract ReentrantPledger {
    enum OnReceive {
        Accept,
        Reject,
        ReenterWithdraw,
        ReenterReclaim,
        ReenterFinalize,
        ReenterPledge
    }

    IEthPledgeEscrow public escrow;
    OnReceive public onReceive;
    uint256 public reentryAttempts;
    bool public lastReentrySucceeded;
    bytes public lastReentryResult;

    function setEscrow(IEthPledgeEscrow escrow_) external {
        escrow = escrow_;
    }

    function setOnReceive(OnReceive onReceive_) external {
        onReceive = onReceive_;
    }

    function pledge() external payable {
        escrow.pledge{value: msg.value}();
    }

    function withdraw() external {
        escrow.withdraw();
    }

    function reclaim() external {
        escrow.reclaim();
    }

    receive() external payable {
        if (onReceive == OnReceive.Accept) return;
        if (onReceive == OnReceive.Reject) revert("ReentrantPledger: rejected");
        bytes memory inner;
        uint256 value;
        if (onReceive == OnReceive.ReenterWithdraw) {
            inner = abi.encodeCall(IEthPledgeEscrow.withdraw, ());
        } else if (onReceive == OnReceive.ReenterReclaim) {
            inner = abi.encodeCall(IEthPledgeEscrow.reclaim, ());
        } else if (onReceive == OnReceive.ReenterFinalize) {
            inner = abi.encodeCall(IEthPledgeEscrow.finalize, ());
        } else {
            inner = abi.encodeCall(IEthPledgeEscrow.pledge, ());
            value = msg.value;
        }
        reentryAttempts += 1;
        (lastReentrySucceeded, lastReentryResult) = address(escrow).call{value: value}(inner);
    }
}
