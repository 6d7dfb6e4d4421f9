// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {LowLevelCall} from "@openzeppelin/contracts/utils/LowLevelCall.sol";

import {PledgeEscrow} from "./PledgeEscrow.sol";

/// @title EthPledgeEscrow: one project's pledges, in ETH
/// @notice Pledge by calling {pledge} with value; plain transfers are refused (there is no
/// `receive`), so every wei the escrow holds is booked to a pledger. See {PledgeEscrow} for the
/// rules and the decisions.
contract EthPledgeEscrow is PledgeEscrow {
    /// @notice The recipient refused the payout; nothing changed.
    error TransferFailed();

    /// @param organizer_ receives the total on finalize
    /// @param goal_ in wei
    /// @param deadline_ unix seconds, in the future
    /// @param minPledge_ in wei, at most the goal
    constructor(address organizer_, uint256 goal_, uint256 deadline_, uint256 minPledge_)
        PledgeEscrow(organizer_, goal_, deadline_, minPledge_)
    {}

    /// @notice Pledge `msg.value` wei to the project; withdrawable until the goal is reached.
    function pledge() external payable nonReentrant {
        _checkPledgeOpen();
        _recordPledge(msg.sender, msg.value);
    }

    /// @dev Sends without copying the recipient's return data (no return-data bomb), forwarding
    /// all gas so that a contract wallet can receive; reentrancy is stopped by the guard.
    function _pay(address to, uint256 amount) internal override {
        if (!LowLevelCall.callNoReturn(to, amount, "")) revert TransferFailed();
    }
}
